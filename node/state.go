package node

// Reads of committed chain state, for the flows and the API: consent's typed reads
// over node/chain's committed state (no query paths, no JSON).

import (
	"context"
	"errors"
	"fmt"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/api"
)

// readState returns what get reads from this node's committed state and the height
// it read at. consent's refusal of a read (an unknown record, consent or grant) is
// api.ErrNotFound carrying the refusal's log; a malformed argument (CodeInvalid) stays
// a *consent.Rejection; anything else is the node's failure.
func readState[T any](n *Node, get func(consent.Reader) (T, error)) (v T, height int64, err error) {
	height, err = n.chain.ReadCommitted(func(r consent.Reader) error {
		var err error
		v, err = get(r)
		return err
	})
	if err != nil {
		var rej *consent.Rejection
		if errors.As(err, &rej) && rej.Code != consent.CodeInvalid {
			err = fmt.Errorf("%w: %s", api.ErrNotFound, rej.Log)
		}
		var zero T
		return zero, height, err
	}
	return v, height, nil
}

// read is readState of one item named by arg, without the height.
func read[A, T any](n *Node, get func(consent.Reader, A) (T, error), arg A) (T, error) {
	v, _, err := readState(n, func(r consent.Reader) (T, error) { return get(r, arg) })
	return v, err
}

// Records lists a patient's records from committed state.
func (n *Node) Records(_ context.Context, patient consent.PatientID) ([]consent.Record, error) {
	recs, err := read(n, consent.PatientRecords, patient)
	if errors.Is(err, api.ErrNotFound) {
		return nil, nil
	}
	return recs, err // nil on error: readState
}

// Record is one record from committed state.
func (n *Node) Record(_ context.Context, id consent.RecordID) (*consent.Record, error) {
	return read(n, consent.GetRecord, id)
}

// Consent is one consent from committed state.
func (n *Node) Consent(_ context.Context, id consent.ConsentID) (*consent.Consent, error) {
	return read(n, consent.GetConsent, id)
}

// Consents lists a patient's consents from committed state.
func (n *Node) Consents(_ context.Context, patient consent.PatientID) ([]consent.Consent, error) {
	cs, err := read(n, consent.Consents, patient)
	if errors.Is(err, api.ErrNotFound) {
		return nil, nil
	}
	return cs, err // nil on error: readState
}

// Hospitals is the chain's hospital registry, sorted by ID.
func (n *Node) Hospitals(context.Context) ([]consent.Hospital, error) {
	hs, _, err := readState(n, consent.Hospitals)
	return hs, err
}
