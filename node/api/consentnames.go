package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/fhir"
)

// A Consent names only what the chain knows (consent.CheckNames): each class an FHIR
// R4 resource type, each actor a hospital in the chain's registry, each data reference
// a record of the patient. The chain refuses a grant that names anything else; the
// API refuses it first, with the path of the element in the Consent and the known
// name it probably is a typo of (400, OperationOutcome), and submits nothing. The
// names are found by walking the Consent's provisions as written, so the path does
// not depend on how the mapping (consentmap.go) shapes the policy.

// namedProvision is what the check reads of a provision (the mapping has read and
// checked the rest).
type namedProvision struct {
	Actor []struct {
		Reference *fhir.Reference `json:"reference"`
	} `json:"actor"`
	Class []fhir.Coding `json:"class"`
	Data  []struct {
		Reference *fhir.Reference `json:"reference"`
	} `json:"data"`
	Provision []namedProvision `json:"provision"`
}

// grantNamed is grantOf, refusing first a class that is not an FHIR R4 resource type
// and, once the Consent maps, an actor or record the chain does not know.
func (s *server) grantNamed(ctx context.Context, raw []byte) (consent.Grant, error) {
	root := namedRoot(raw)
	if err := checkClassNames(root, "Consent.provision"); err != nil {
		return consent.Grant{}, err
	}
	g, err := grantOf(raw)
	if err != nil {
		return consent.Grant{}, err
	}
	return g, s.checkRegistered(ctx, root, g.Patient)
}

// namedRoot reads the root provision (nil if none, or if the Consent does not parse:
// the mapping refuses it then).
func namedRoot(raw []byte) *namedProvision {
	var c struct {
		Provision *namedProvision `json:"provision"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return nil
	}
	return c.Provision
}

// walk calls f on p and every provision under it, with its path, until f fails.
func (p *namedProvision) walk(path string, f func(p *namedProvision, path string) error) error {
	if p == nil {
		return nil
	}
	if err := f(p, path); err != nil {
		return err
	}
	for i := range p.Provision {
		if err := p.Provision[i].walk(fmt.Sprintf("%s.provision[%d]", path, i), f); err != nil {
			return err
		}
	}
	return nil
}

// checkClassNames refuses a class coded in the resource-types system whose code is
// not an FHIR R4 resource type (a class in another system the mapping refuses).
func checkClassNames(root *namedProvision, path string) error {
	return root.walk(path, func(p *namedProvision, path string) error {
		for i, cd := range p.Class {
			if cd.System != fhir.SystemResourceTypes {
				continue
			}
			if err := consent.CheckClass(consent.DataClass(cd.Code)); err != nil {
				return nameError(fmt.Sprintf("%s.class[%d]", path, i), "code-invalid", err)
			}
		}
		return nil
	})
}

// checkRegistered refuses an actor not in the chain's registry and a data reference
// that is not a record of patient. The registry and the patient's records are read
// once each, and only if the Consent names an actor or a record.
func (s *server) checkRegistered(ctx context.Context, root *namedProvision, patient consent.PatientID) error {
	var hospitals []consent.HospitalID
	var records []consent.RecordID
	var loaded struct{ hospitals, records bool }
	return root.walk("Consent.provision", func(p *namedProvision, path string) error {
		for i, a := range p.Actor {
			id, ok := strings.CutPrefix(refOf(a.Reference), "Organization/")
			if !ok {
				continue // the mapping refused it
			}
			if !loaded.hospitals {
				hs, err := s.b.Hospitals(ctx)
				if err != nil {
					return err
				}
				for _, h := range hs {
					hospitals = append(hospitals, h.ID)
				}
				slices.Sort(hospitals)
				loaded.hospitals = true
			}
			if err := consent.CheckHospital(consent.HospitalID(id), hospitals); err != nil {
				return nameError(fmt.Sprintf("%s.actor[%d].reference", path, i), "value", err)
			}
		}
		for i, d := range p.Data {
			id, ok := strings.CutPrefix(refOf(d.Reference), "DocumentReference/")
			if !ok {
				continue // the mapping refused it
			}
			if !loaded.records {
				rs, err := s.b.Records(ctx, patient)
				if err != nil {
					return err
				}
				for _, r := range rs {
					records = append(records, r.ID)
				}
				loaded.records = true
			}
			if err := consent.CheckRecord(consent.RecordID(id), records); err != nil {
				return nameError(fmt.Sprintf("%s.data[%d].reference", path, i), "value", err)
			}
		}
		return nil
	})
}

func refOf(r *fhir.Reference) string {
	if r == nil {
		return ""
	}
	return r.Reference
}

// nameError is a *consent.NameError as the mapping's error at path: the name, its
// problem and the suggestion, e.g. "Observatoin: not an FHIR R4 resource type; did
// you mean Observation?".
func nameError(path, code string, err error) error {
	var ne *consent.NameError
	if !errors.As(err, &ne) {
		return err
	}
	return &mapError{Path: path, Code: code, Msg: ne.Detail()}
}
