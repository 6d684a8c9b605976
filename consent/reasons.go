package consent

import (
	"cmp"
	"slices"
)

// The reason a denial gives. Before any consent, the record itself: a record the
// chain cannot release whatever the consents say is denied for that, erased first,
// then not-yet-available (a record in threshold custody that fewer than its threshold
// of custodians have accepted: no k shares to combine, so no key to release; the
// request is denied, not left hanging, and may be made again once it is available).
// Otherwise a request is decided against every consent of the patient; when none permits, each has its own reason, and the denial gives the most
// telling one: the one that says best what stands between the requester and the
// record. A reason is ranked by its tier first, then by its place in the tier's list
// (later is more telling). From most to least telling:
//
//  1. lapsed: a consent that would permit this request, but is revoked, or outside
//     its period: revoked, expired or not-yet-valid ("a consent would cover this,
//     but the patient revoked it"). Of several, the newest consent (highest grant
//     height: the patient's latest word) gives the reason; at one height revoked,
//     then expired, then not-yet-valid.
//  2. denied: a deny the patient wrote matches: class-denied, record-denied,
//     purpose-denied, actor-denied, denied-by-provision.
//  3. missed: a permit in force that does not cover the request, by the first
//     criterion it fails in the order the permit is checked (actor, purpose, its own
//     period, record, class), so the later criterion — the nearer miss — ranks
//     higher: class-not-permitted, record-not-permitted, expired, not-yet-valid,
//     purpose-not-permitted, actor-not-permitted.
//  4. inactive: a consent revoked or outside its period that would not have
//     permitted the request anyway: revoked, expired, not-yet-valid.
//  5. no-consent: the patient has none that says anything about the request.
//
// Among equal reasons the first consent in ID order gives it (its ID is not part of
// the denial). The transcripts in testdata/reasons.txt pin this order.

// ReasonNotYetAvailable denies access to a record in threshold custody that fewer than
// its threshold of custodians have accepted (Record.Available).
const ReasonNotYetAvailable = "not-yet-available"

// recordReason is why a record cannot be released whatever the consents say
// (erased, then not-yet-available), or "" if it can.
func recordReason(r Reader, rec *Record) (string, error) {
	if rec.Erased != 0 {
		return ReasonErased, nil
	}
	ok, err := available(r, rec)
	if err != nil || ok {
		return "", err
	}
	return ReasonNotYetAvailable, nil
}

// tier is the first key of a reason's rank.
type tier uint8

// Tiers, least telling first.
const (
	tierNone tier = iota
	tierInactive
	tierMiss
	tierDeny
	tierLapsed
)

// tierReasons lists each tier's reasons, least telling first.
var tierReasons = [...][]string{
	tierNone:     {ReasonNoConsent},
	tierInactive: {ReasonNotYetValid, ReasonExpired, ReasonRevoked},
	tierMiss: {ReasonActorNotPermitted, ReasonPurposeNotPermitted, ReasonNotYetValid, ReasonExpired,
		ReasonRecordNotPermitted, ReasonClassNotPermitted},
	tierDeny:   {ReasonDenied, ReasonActorDenied, ReasonPurposeDenied, ReasonRecordDenied, ReasonClassDenied},
	tierLapsed: {ReasonNotYetValid, ReasonExpired, ReasonRevoked},
}

// verdict is one consent's (or provision's) answer to a request: permit, or a denial
// reason and its tier. The zero verdict is no answer yet, below every reason.
type verdict struct {
	permit bool
	reason string
	tier   tier
	height Height // a lapsed consent's grant height, else 0
}

// rank orders verdicts that deny: -1 for none (the zero verdict).
func (v verdict) rank() int {
	if v.reason == "" {
		return -1
	}
	return slices.Index(tierReasons[v.tier], v.reason)
}

// moreTelling returns b if it ranks above a, else a (the first one wins a tie).
func moreTelling(a, b verdict) verdict {
	if c := cmp.Or(cmp.Compare(b.tier, a.tier), cmp.Compare(b.height, a.height), cmp.Compare(b.rank(), a.rank())); c > 0 {
		return b
	}
	return a
}

// outOfForce is the verdict of a consent not in force for why (revoked, expired,
// not-yet-valid): lapsed if it would otherwise permit, inactive if not.
func outOfForce(wouldPermit bool, why string) verdict {
	if wouldPermit {
		return verdict{reason: why, tier: tierLapsed}
	}
	return verdict{reason: why, tier: tierInactive}
}

// judge is c's verdict on a: its policy's, unless it is revoked.
func (c Consent) judge(a Access) verdict {
	v := c.Policy.judge(a)
	if c.Revoked != 0 {
		v = outOfForce(v.permit, ReasonRevoked)
	}
	if v.tier == tierLapsed {
		v.height = c.Height
	}
	return v
}

// Decide decides a under a patient's consents, taken in the order given (the chain
// gives them in consent ID order): the first that is in force and permits grants
// access; otherwise the denial gives the most telling reason (see above), no-consent
// when there are none.
func Decide(consents []Consent, a Access) (granted bool, by ConsentID, reason string) {
	best := verdict{reason: ReasonNoConsent, tier: tierNone}
	for _, c := range consents {
		v := c.judge(a)
		if v.permit {
			return true, c.ID, ""
		}
		best = moreTelling(best, v)
	}
	return false, "", best.reason
}

// emergencyReasons is the vocabulary of break-glass reason codes. Never modified: the
// chain decides with it, so it is read through EmergencyReasons and IsEmergencyReason.
var emergencyReasons = []string{"unconscious-patient", "life-threatening", "patient-unable-to-consent", "public-health-emergency"}

// EmergencyReasons returns the accepted break-glass reason codes (a copy).
func EmergencyReasons() []string { return slices.Clone(emergencyReasons) }

// IsEmergencyReason reports whether code is an accepted break-glass reason code.
func IsEmergencyReason(code string) bool { return slices.Contains(emergencyReasons, code) }
