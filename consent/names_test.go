package consent_test

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/medledger/medledger/consent"
)

// The data class table is exactly the resource types of the R4 JSON schema the fhir
// package validates against (the discriminator of its ResourceList), in order.
func TestDataClassesAreR4ResourceTypes(t *testing.T) {
	f, err := os.Open("../fhir/schema/fhir.schema.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Discriminator struct {
			Mapping map[string]string `json:"mapping"`
		} `json:"discriminator"`
	}
	if err := json.NewDecoder(zr).Decode(&schema); err != nil {
		t.Fatal(err)
	}
	var want []consent.DataClass
	for name := range schema.Discriminator.Mapping {
		want = append(want, consent.DataClass(name))
	}
	slices.Sort(want)
	got := consent.DataClasses()
	if len(want) != 146 || !slices.Equal(got, want) {
		t.Fatalf("consent's data classes (%d) are not the schema's %d resource types:\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
	for _, c := range want {
		if !consent.IsDataClass(c) {
			t.Errorf("IsDataClass(%s) = false", c)
		}
	}
}

func TestSuggest(t *testing.T) {
	classes := consent.DataClasses()
	hospitals := []consent.HospitalID{"ada", "bayside", "city", "dover"}
	for _, tt := range []struct{ name, want string }{
		{"Observatoin", "Observation"},  // transposition
		{"Observations", "Observation"}, // insertion
		{"observation", "Observation"},  // case
		{"OBSERVATION", "Observation"},  // case
		{"Obsrvatin", "Observation"},    // two deletions
		{"Obsvtn", ""},                  // too far
		{"Observation", ""},             // known
		{"LabResult", ""},               // nothing near
		{"Conditon", "Condition"},       // deletion
		{"MedicationRequets", "MedicationRequest"},
	} {
		if got := consent.Suggest(consent.DataClass(tt.name), classes); string(got) != tt.want {
			t.Errorf("Suggest(%q, classes) = %q, want %q", tt.name, got, tt.want)
		}
	}
	for _, tt := range []struct{ name, want string }{
		{"baysde", "bayside"},
		{"bayisde", "bayside"},
		{"cty", "city"},
		{"ad", ""},  // too short for an edit
		{"xyz", ""}, // nothing near
		{"dovre", "dover"},
		{"bay", ""}, // a prefix is not a typo
		{"BAYSIDE", "bayside"},
	} {
		if got := consent.Suggest(consent.HospitalID(tt.name), hospitals); string(got) != tt.want {
			t.Errorf("Suggest(%q, hospitals) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// fakeRegistry is a Registry in memory.
type fakeRegistry struct {
	hospitals []consent.HospitalID
	records   map[consent.RecordID]consent.PatientID
	err       error
}

func (f fakeRegistry) HospitalIDs() ([]consent.HospitalID, error) { return f.hospitals, f.err }

func (f fakeRegistry) RecordPatient(id consent.RecordID) (consent.PatientID, bool, error) {
	p, ok := f.records[id]
	return p, ok, nil
}

func TestCheckNames(t *testing.T) {
	const alice, bob = consent.PatientID("a11ce"), consent.PatientID("b0b")
	r1, r2, r9 := consent.RecordID("11111111111111111111111111111111"), consent.RecordID("22222222222222222222222222222222"), consent.RecordID("99999999999999999999999999999999")
	reg := fakeRegistry{hospitals: []consent.HospitalID{"ada", "bayside", "city"},
		records: map[consent.RecordID]consent.PatientID{r1: alice, r2: bob}}
	permit := func(p consent.Provision) consent.Policy {
		p.Type = consent.Permit
		return consent.Policy{Base: consent.Deny, Provisions: []consent.Provision{{Type: consent.Permit, Actors: []consent.HospitalID{"ada"}}, p}}
	}
	for _, tt := range []struct {
		name   string
		policy consent.Policy
		code   consent.Code
		where  string
		detail string
	}{
		{"known names", permit(consent.Provision{Actors: []consent.HospitalID{"bayside"}, Classes: []consent.DataClass{"Observation"}, Records: []consent.RecordID{r1}}), 0, "", ""},
		{"hospital typo", permit(consent.Provision{Actors: []consent.HospitalID{"bayside", "baysde"}}), consent.CodeUnknownHospital,
			"provisions[1].actors[1]", "baysde: no such hospital in the chain's registry; did you mean bayside?"},
		{"class typo in an exception", permit(consent.Provision{Except: []consent.Provision{{Type: consent.Deny, Classes: []consent.DataClass{"Condition", "Observatoin"}}}}),
			consent.CodeInvalid, "provisions[1].except[0].classes[1]", "Observatoin: not an FHIR R4 resource type; did you mean Observation?"},
		{"unregistered record", permit(consent.Provision{Records: []consent.RecordID{r9}}), consent.CodeUnknownRecord,
			"provisions[1].records[0]", string(r9) + ": no record of this patient on the chain"},
		{"another patient's record", permit(consent.Provision{Records: []consent.RecordID{r1, r2}}), consent.CodeUnknownRecord,
			"provisions[1].records[1]", string(r2) + ": no record of this patient on the chain"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := consent.CheckNames(alice, tt.policy, reg)
			if tt.code == 0 {
				if err != nil {
					t.Fatalf("CheckNames: %v", err)
				}
				return
			}
			var ne *consent.NameError
			if !errors.As(err, &ne) {
				t.Fatalf("CheckNames = %v, want a *NameError", err)
			}
			if ne.Code != tt.code || ne.Where() != tt.where || ne.Detail() != tt.detail {
				t.Errorf("got %s at %s: %s\nwant %s at %s: %s", ne.Code, ne.Where(), ne.Detail(), tt.code, tt.where, tt.detail)
			}
		})
	}
	boom := errors.New("registry down")
	if err := consent.CheckNames(alice, permit(consent.Provision{}), fakeRegistry{err: boom}); !errors.Is(err, boom) {
		t.Errorf("a registry failure: CheckNames = %v, want it passed through", err)
	}
}
