package consent

import (
	"fmt"
	"slices"
)

// Rule is a permit or a deny.
type Rule uint8

// Rules.
const (
	Deny   Rule = 1 // as a base rule: opt-in — nothing is shared unless a provision permits it
	Permit Rule = 2 // as a base rule: opt-out — shared unless a provision denies it
)

func (r Rule) String() string {
	switch r {
	case Deny:
		return "deny"
	case Permit:
		return "permit"
	}
	return "invalid"
}

// Policy is the chain's form of a FHIR R4 Consent: a base rule (policyRule) and
// provisions that make exceptions to it, each of which may hold nested exceptions of
// the opposite type. Times are Unix seconds of block time; 0 leaves a bound open.
type Policy struct {
	Base       Rule        `cbor:"1,keyasint" json:"base"`
	Start      int64       `cbor:"2,keyasint,omitempty" json:"start,omitempty"`
	End        int64       `cbor:"3,keyasint,omitempty" json:"end,omitempty"`
	Provisions []Provision `cbor:"4,keyasint,omitempty" json:"provisions,omitempty"`
}

// Provision is a permit or deny that applies when every criterion it names matches
// (an empty criterion matches anything).
type Provision struct {
	Type     Rule         `cbor:"1,keyasint" json:"type"`
	Actors   []HospitalID `cbor:"2,keyasint,omitempty" json:"actors,omitempty"`
	Purposes []Purpose    `cbor:"3,keyasint,omitempty" json:"purposes,omitempty"`
	Start    int64        `cbor:"4,keyasint,omitempty" json:"start,omitempty"`
	End      int64        `cbor:"5,keyasint,omitempty" json:"end,omitempty"`
	Classes  []DataClass  `cbor:"6,keyasint,omitempty" json:"classes,omitempty"`
	Records  []RecordID   `cbor:"7,keyasint,omitempty" json:"records,omitempty"`
	Except   []Provision  `cbor:"8,keyasint,omitempty" json:"except,omitempty"`
}

// purposes is the vocabulary of v3 PurposeOfUse codes the chain accepts. Never
// modified: the chain decides with it, so it is read through Purposes and IsPurpose.
var purposes = []Purpose{
	"BTG", "CAREMGT", "CLINTRCH", "COVERAGE", "ETREAT", "HDIRECT", "HLEGAL", "HMARKT",
	"HOPERAT", "HPAYMT", "HQUALIMP", "HRESCH", "HSYSADMIN", "PATRQT", "POPHLTH", "PUBHLTH",
	"RECORDMGT", "TREAT",
}

// Purposes returns the v3 PurposeOfUse codes the chain accepts (a copy).
func Purposes() []Purpose { return slices.Clone(purposes) }

// IsPurpose reports whether p is a v3 PurposeOfUse code the chain accepts.
func IsPurpose(p Purpose) bool { return slices.Contains(purposes, p) }

// maxProvisionDepth and maxProvisions bound a policy's size.
const (
	maxProvisionDepth = 4
	maxProvisions     = 64
)

// Validate rejects a policy that cannot be evaluated faithfully.
func (p Policy) Validate() error {
	if p.Base != Deny && p.Base != Permit {
		return fmt.Errorf("base rule must be deny (opt-in) or permit (opt-out)")
	}
	if p.End != 0 && p.End < p.Start {
		return fmt.Errorf("policy ends before it starts")
	}
	n := 0
	return validateProvisions(p.Provisions, oppositeOf(p.Base), 1, &n)
}

func oppositeOf(r Rule) Rule {
	if r == Deny {
		return Permit
	}
	return Deny
}

func validateProvisions(ps []Provision, want Rule, depth int, n *int) error {
	if len(ps) == 0 {
		return nil
	}
	if depth > maxProvisionDepth {
		return fmt.Errorf("provisions nest deeper than %d", maxProvisionDepth)
	}
	for _, p := range ps {
		if *n++; *n > maxProvisions {
			return fmt.Errorf("more than %d provisions", maxProvisions)
		}
		if p.Type != want {
			return fmt.Errorf("a provision under a %s must be a %s, got %s", oppositeOf(want), want, p.Type)
		}
		if err := p.validateCriteria(); err != nil {
			return err
		}
		if p.Type == Deny {
			for _, pu := range p.Purposes {
				if pu == "ETREAT" || pu == "BTG" {
					return fmt.Errorf("a deny of purpose %s cannot be enforced: emergency access is not decided by consents "+
						"(any member hospital may break the glass with a coded reason, flagged for review)", pu)
				}
			}
		}
		if err := validateProvisions(p.Except, oppositeOf(want), depth+1, n); err != nil {
			return err
		}
	}
	return nil
}

func (p Provision) validateCriteria() error {
	for _, a := range p.Actors {
		if !a.Valid() {
			return fmt.Errorf("actor %q is not a hospital ID", a)
		}
	}
	for _, pu := range p.Purposes {
		if !IsPurpose(pu) {
			return fmt.Errorf("purpose %q is not a known v3 PurposeOfUse code", pu)
		}
	}
	for _, c := range p.Classes {
		if err := CheckClass(c); err != nil {
			return fmt.Errorf("data class %q is not a FHIR resource type%s", Truncate(string(c), 64), err.(*NameError).Hint())
		}
	}
	for _, r := range p.Records {
		if !r.Valid() {
			return fmt.Errorf("record %q is not a record ID", r)
		}
	}
	if p.End != 0 && p.End < p.Start {
		return fmt.Errorf("provision ends before it starts")
	}
	return nil
}

// Access is what a policy is asked about.
type Access struct {
	Actor   HospitalID
	Purpose Purpose
	Record  RecordID
	Classes []DataClass // the record's data classes
	Time    int64       // block time, Unix seconds
}

// Denial reasons.
const (
	ReasonNoConsent           = "no-consent"
	ReasonRevoked             = "revoked"
	ReasonExpired             = "expired"
	ReasonNotYetValid         = "not-yet-valid"
	ReasonActorNotPermitted   = "actor-not-permitted"
	ReasonPurposeNotPermitted = "purpose-not-permitted"
	ReasonClassNotPermitted   = "class-not-permitted"
	ReasonRecordNotPermitted  = "record-not-permitted"
	ReasonDenied              = "denied-by-provision"
	ReasonClassDenied         = "class-denied"
	ReasonRecordDenied        = "record-denied"
	ReasonActorDenied         = "actor-denied"
	ReasonPurposeDenied       = "purpose-denied"
	ReasonErased              = "erased"
)

// Evaluate decides access under p: permit, or deny with a reason.
func (p Policy) Evaluate(a Access) (bool, string) {
	v := p.judge(a)
	return v.permit, v.reason
}

// judge is p's verdict on a, ranked (reasons.go): a policy outside its period that
// would otherwise permit is lapsed (its period is the reason that matters), one that
// would not permit anyway is inactive.
func (p Policy) judge(a Access) verdict {
	effect, v := decide(p.Provisions, p.Base, a)
	lapse := ""
	switch {
	case p.Start != 0 && a.Time < p.Start:
		lapse = ReasonNotYetValid
	case p.End != 0 && a.Time > p.End:
		lapse = ReasonExpired
	}
	if lapse != "" {
		return outOfForce(effect == Permit, lapse)
	}
	if effect == Permit {
		return verdict{permit: true}
	}
	if v.reason == "" {
		return verdict{reason: ReasonNoConsent, tier: tierNone}
	}
	return v
}

// decide applies provisions (exceptions to base) at one level. A matching deny beats
// a matching permit: a consent is never widened. A denial by the base rule gives the
// most telling reason among the permits that did not apply.
func decide(ps []Provision, base Rule, a Access) (Rule, verdict) {
	var permitted bool
	var best verdict
	for _, p := range ps {
		if miss := p.miss(a); miss != "" {
			best = moreTelling(best, verdict{reason: miss, tier: tierMiss})
			continue
		}
		effect, v := p.Type, verdict{reason: p.denyReason(), tier: tierDeny}
		if len(p.Except) > 0 {
			if e, ev := decide(p.Except, p.Type, a); e != p.Type {
				effect, v = e, ev
			}
		}
		if effect == Deny {
			return Deny, v
		}
		permitted = true
	}
	if permitted || base == Permit {
		return Permit, verdict{permit: true}
	}
	return Deny, best
}

// miss returns why p does not apply to a ("" when it applies), phrased as the reason a
// permit that did not apply gives for a denial.
func (p Provision) miss(a Access) string {
	switch {
	case len(p.Actors) > 0 && !slices.Contains(p.Actors, a.Actor):
		return ReasonActorNotPermitted
	case len(p.Purposes) > 0 && !slices.Contains(p.Purposes, a.Purpose):
		return ReasonPurposeNotPermitted
	case p.Start != 0 && a.Time < p.Start:
		return ReasonNotYetValid
	case p.End != 0 && a.Time > p.End:
		return ReasonExpired
	case len(p.Records) > 0 && !slices.Contains(p.Records, a.Record):
		return ReasonRecordNotPermitted
	case len(p.Classes) > 0 && !p.classesMatch(a.Classes):
		return ReasonClassNotPermitted
	}
	return ""
}

// classesMatch: a permit covers a record only if it covers every class in it; a deny
// applies to a record that holds any class it names. Either way a consent is never
// read more widely than written.
func (p Provision) classesMatch(classes []DataClass) bool {
	if p.Type == Permit {
		for _, c := range classes {
			if !slices.Contains(p.Classes, c) {
				return false
			}
		}
		return true
	}
	for _, c := range classes {
		if slices.Contains(p.Classes, c) {
			return true
		}
	}
	return false
}

// denyReason names what a matching deny provision was about.
func (p Provision) denyReason() string {
	switch {
	case len(p.Classes) > 0:
		return ReasonClassDenied
	case len(p.Records) > 0:
		return ReasonRecordDenied
	case len(p.Actors) > 0:
		return ReasonActorDenied
	case len(p.Purposes) > 0:
		return ReasonPurposeDenied
	}
	return ReasonDenied
}

// MarshalText gives "deny" or "permit".
func (r Rule) MarshalText() ([]byte, error) {
	if r != Deny && r != Permit {
		return nil, fmt.Errorf("invalid rule %d", r)
	}
	return []byte(r.String()), nil
}

// UnmarshalText reads "deny" or "permit".
func (r *Rule) UnmarshalText(b []byte) error {
	switch string(b) {
	case "deny":
		*r = Deny
	case "permit":
		*r = Permit
	default:
		return fmt.Errorf("rule %q: want deny or permit", Truncate(string(b), 20))
	}
	return nil
}
