package consent

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Closed vocabularies. Every name a policy uses is one the chain knows: a hospital in
// the registry, a data class that is an FHIR R4 resource type name (classes.go), a
// record registered for the granting patient, a purpose in Purposes. A name outside
// them is refused (CheckNames, on the chain at grant time; the CLI and the API check
// first with the same functions), never read as "matches nothing": a deny naming a
// misspelt class would deny nothing, a permit naming a not-yet-registered hospital
// would hand the patient's records to whoever is later registered under that ID.

// Problems a NameError reports.
const (
	problemClass         = "not an FHIR R4 resource type"
	problemHospital      = "no such hospital in the chain's registry"
	problemRecord        = "no record of this patient on the chain"
	maxSuggestNameLength = 64
)

// NameError is a name in a policy outside its vocabulary. The chain refuses a grant
// with its Code and message; the CLI and the API refuse it before submitting, pointing
// at the name (Field and Index in the provision at Provision).
type NameError struct {
	Code      Code   // CodeInvalid (class), CodeUnknownHospital, CodeUnknownRecord
	Provision []int  // the provision: Policy.Provisions[Provision[0]].Except[Provision[1]]…; nil when checked alone
	Field     string // "actors", "classes" or "records"
	Index     int    // the name's position in Field
	Name      string
	Problem   string // what is wrong with it, e.g. "not an FHIR R4 resource type"
	Suggest   string // the known name it most probably is a typo of, or ""
}

// Detail is the name and its problem, with the suggestion if any, in one line:
// "Observatoin: not an FHIR R4 resource type; did you mean Observation?".
func (e *NameError) Detail() string {
	return plainName(e.Name) + ": " + e.Problem + e.Hint()
}

// Hint is "; did you mean NAME?" when there is a suggestion, else "".
func (e *NameError) Hint() string {
	if e.Suggest == "" {
		return ""
	}
	return "; did you mean " + e.Suggest + "?"
}

// plainName is name as a log shows it: as it is if it is short printable ASCII
// without spaces, else quoted (and cut at 64 bytes).
func plainName(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] <= ' ' || name[i] > '~' || name[i] == '"' || i >= maxSuggestNameLength {
			return strconv.Quote(Truncate(name, maxSuggestNameLength))
		}
	}
	if name == "" {
		return `""`
	}
	return name
}

// Where is the name's place in the policy, e.g. "provisions[0].except[1].classes[0]"
// ("classes[0]" for a name checked alone).
func (e *NameError) Where() string {
	var b strings.Builder
	for depth, i := range e.Provision {
		if depth == 0 {
			fmt.Fprintf(&b, "provisions[%d].", i)
		} else {
			fmt.Fprintf(&b, "except[%d].", i)
		}
	}
	fmt.Fprintf(&b, "%s[%d]", e.Field, e.Index)
	return b.String()
}

func (e *NameError) Error() string { return "consent: policy " + e.Where() + ": " + e.Detail() }

// rejection is the chain's answer to a grant naming it.
func (e *NameError) rejection() *Rejection {
	return reject(e.Code, "policy: %s: %s", e.Where(), e.Detail())
}

// CheckClass returns a *NameError (Field "classes") unless c is an FHIR R4 resource
// type name, suggesting the one it probably is a typo of.
func CheckClass(c DataClass) error {
	if IsDataClass(c) {
		return nil
	}
	return &NameError{Code: CodeInvalid, Field: "classes", Name: string(c), Problem: problemClass,
		Suggest: string(Suggest(c, r4ResourceTypes))}
}

// CheckHospital returns a *NameError (Field "actors") unless id is in registered (the
// registry's IDs, ascending), suggesting the one it probably is a typo of.
func CheckHospital(id HospitalID, registered []HospitalID) error {
	if _, ok := slices.BinarySearch(registered, id); ok {
		return nil
	}
	return &NameError{Code: CodeUnknownHospital, Field: "actors", Name: string(id), Problem: problemHospital,
		Suggest: string(Suggest(id, registered))}
}

// CheckRecord returns a *NameError (Field "records") unless id is among own, the
// patient's records. Whether it is registered to someone else is not said.
func CheckRecord(id RecordID, own []RecordID) error {
	if slices.Contains(own, id) {
		return nil
	}
	return &NameError{Code: CodeUnknownRecord, Field: "records", Name: string(id), Problem: problemRecord}
}

// Registry is what CheckNames checks a policy's names against: the chain's state, or
// a client's view of it.
type Registry interface {
	// HospitalIDs is every registered hospital's ID, ascending.
	HospitalIDs() ([]HospitalID, error)
	// RecordPatient is the patient of the registered record id; found is false if no
	// record has that ID.
	RecordPatient(id RecordID) (p PatientID, found bool, err error)
}

// CheckNames checks every name patient's policy p uses against the vocabularies: each
// actor a registered hospital, each class an FHIR R4 resource type, each record a
// registered record of patient. The first name outside them, in provision order
// (depth first; actors, then classes, then records), is returned as a *NameError; an
// error of reg is returned as it is. The chain runs it on every grant, so no client
// can bypass it; the CLI and the API run it first to point at the name.
func CheckNames(patient PatientID, p Policy, reg Registry) error {
	hospitals, err := reg.HospitalIDs()
	if err != nil {
		return err
	}
	c := nameChecker{patient: patient, hospitals: hospitals, reg: reg}
	return c.provisions(p.Provisions, nil)
}

type nameChecker struct {
	patient   PatientID
	hospitals []HospitalID
	reg       Registry
}

func (c nameChecker) provisions(ps []Provision, at []int) error {
	for i, p := range ps {
		here := append(slices.Clip(at), i)
		if err := c.provision(p, here); err != nil {
			return err
		}
		if err := c.provisions(p.Except, here); err != nil {
			return err
		}
	}
	return nil
}

func (c nameChecker) provision(p Provision, at []int) error {
	for i, a := range p.Actors {
		if err := placed(CheckHospital(a, c.hospitals), at, i); err != nil {
			return err
		}
	}
	for i, cl := range p.Classes {
		if err := placed(CheckClass(cl), at, i); err != nil {
			return err
		}
	}
	for i, r := range p.Records {
		if err := c.record(r); err != nil {
			return placed(err, at, i)
		}
	}
	return nil
}

func (c nameChecker) record(id RecordID) error {
	owner, found, err := c.reg.RecordPatient(id)
	switch {
	case err != nil:
		return err
	case !found || owner != c.patient:
		// One answer for both: whether a record ID exists, and whose it is, is not
		// public (consent.PublicQuery), and a grant is no way to ask.
		return &NameError{Code: CodeUnknownRecord, Field: "records", Name: string(id), Problem: problemRecord}
	}
	return nil
}

// placed sets a *NameError's place; other errors pass through.
func placed(err error, at []int, i int) error {
	if ne, ok := err.(*NameError); ok {
		ne.Provision, ne.Index = slices.Clone(at), i
	}
	return err
}

// StateRegistry is the Registry of chain state r.
func StateRegistry(r Reader) Registry { return stateRegistry{r} }

type stateRegistry struct{ r Reader }

func (s stateRegistry) HospitalIDs() ([]HospitalID, error) {
	var ids []HospitalID
	err := scan(s.r, keyHospital, func(k string, _ []byte) (bool, error) {
		ids = append(ids, HospitalID(strings.TrimPrefix(k, keyHospital)))
		return true, nil
	})
	return ids, err
}

func (s stateRegistry) RecordPatient(id RecordID) (PatientID, bool, error) {
	var rec Record
	ok, err := getValue(s.r, keyRecord+string(id), &rec)
	return rec.Patient, ok, err
}

// Suggest returns the name in vocab (ascending) that name most probably is a typo of:
// one equal to it but for case, else the nearest within the typo budget for its
// length (0 edits up to 2 characters, 1 up to 5, else 2), where an insertion, a
// deletion, a substitution or a transposition of neighbours is one edit; on a tie the
// first in vocab. "" if name is in vocab or none is that near. Deterministic, so the
// chain uses it in its logs.
func Suggest[T ~string](name T, vocab []T) T {
	if len(name) > maxSuggestNameLength || slices.Contains(vocab, name) {
		return ""
	}
	for _, v := range vocab {
		if strings.EqualFold(string(v), string(name)) {
			return v
		}
	}
	budget := min(2, len(name)/3)
	var best T
	bestDist := budget + 1
	for _, v := range vocab {
		if d := editDistance(string(name), string(v), bestDist); d < bestDist {
			best, bestDist = v, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b (bytes), or limit
// when it is limit or more.
func editDistance(a, b string, limit int) int {
	if abs(len(a)-len(b)) >= limit {
		return limit
	}
	prev2 := make([]int, len(b)+1) // row i-2
	prev := make([]int, len(b)+1)  // row i-1
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], limit)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
