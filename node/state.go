package node

// Reads of committed chain state, for the flows and the API.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node/api"
)

// query reads committed chain state at path into v (JSON). A not-found answer is
// api.ErrNotFound; another refusal a *consent.Rejection. It returns the height read.
func (n *Node) query(path string, data []byte, v any) (int64, error) {
	res, height, err := n.chain.Query(path, data)
	if err != nil {
		return 0, err
	}
	switch consent.Code(res.Code) {
	case consent.OK:
	case consent.CodeNotFound:
		return height, fmt.Errorf("%w: %s", api.ErrNotFound, res.Log)
	default:
		return height, &consent.Rejection{Code: consent.Code(res.Code), Log: res.Log}
	}
	if v == nil {
		return height, nil
	}
	if err := json.Unmarshal(res.Value, v); err != nil {
		return height, fmt.Errorf("node: query %s: %w", path, err)
	}
	return height, nil
}

// Records lists a patient's records from committed state.
func (n *Node) Records(_ context.Context, patient consent.PatientID) ([]consent.Record, error) {
	var recs []consent.Record
	if _, err := n.query("/records/"+string(patient), nil, &recs); err != nil && !errors.Is(err, api.ErrNotFound) {
		return nil, err
	}
	return recs, nil
}

// Record is one record from committed state.
func (n *Node) Record(_ context.Context, id consent.RecordID) (*consent.Record, error) {
	var rec consent.Record
	if _, err := n.query("/record/"+string(id), nil, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// Consent is one consent from committed state.
func (n *Node) Consent(_ context.Context, id consent.ConsentID) (*consent.Consent, error) {
	var c consent.Consent
	if _, err := n.query("/consent/"+string(id), nil, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Consents lists a patient's consents from committed state.
func (n *Node) Consents(_ context.Context, patient consent.PatientID) ([]consent.Consent, error) {
	var cs []consent.Consent
	if _, err := n.query("/consents/"+string(patient), nil, &cs); err != nil && !errors.Is(err, api.ErrNotFound) {
		return nil, err
	}
	return cs, nil
}
