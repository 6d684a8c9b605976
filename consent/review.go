package consent

import (
	"fmt"
	"slices"
	"strings"
)

// The review of emergency accesses. Every emergency access waits in a queue until a
// privacy officer reviews it with an outcome code: a tx signed with their hospital's
// operator key, once per emergency. Two indexes keep the queue in order without
// reading every emergency: eu/ holds the emergencies awaiting review and er/ the
// reviewed ones, each newest first (by height, then by grant ID); a review moves its
// emergency from one to the other.

// reviewOutcomes is the vocabulary of a review's outcome codes. Never modified: the
// chain decides with it, so it is read through ReviewOutcomes and IsReviewOutcome.
var reviewOutcomes = []string{"justified", "unjustified", "referred"}

// ReviewOutcomes returns the accepted outcome codes of an emergency access's review (a copy).
func ReviewOutcomes() []string { return slices.Clone(reviewOutcomes) }

// IsReviewOutcome reports whether code is an accepted review outcome code.
func IsReviewOutcome(code string) bool { return slices.Contains(reviewOutcomes, code) }

// queueKey is d's key in the review queue index prefix (keyUnreviewed, keyReviewed).
func queueKey(prefix string, d *Decision) string {
	return prefix + newestFirst(uint64(d.Height)) + "/" + string(d.ID)
}

// review records the review of an emergency access. The signer is a registered
// hospital's operator key: of the hospital that requested the access, or of a
// custodian of the record.
func (a *action) review(rv Review) ([]Event, error) {
	h, err := a.signerHospital()
	if err != nil {
		return nil, err
	}
	if !IsReviewOutcome(rv.Outcome) {
		return nil, reject(CodeInvalid, "review outcome %q is not one of %v", Truncate(rv.Outcome, 40), reviewOutcomes)
	}
	d, err := GetDecision(a.st, rv.Grant)
	if err != nil {
		return nil, err
	}
	if d.Emergency == "" {
		return nil, reject(CodeInvalid, "grant %s is not an emergency access: only those are reviewed", d.ID)
	}
	rec, err := GetRecord(a.st, d.Record)
	if err != nil {
		return nil, err
	}
	if h.ID != d.Requester && !slices.Contains(rec.Custodians, h.ID) {
		return nil, reject(CodeUnauthorized, "%s neither requested emergency access %s nor holds record %s", h.ID, d.ID, rec.ID)
	}
	prev, err := getReview(a.st, d.ID)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		return nil, reject(CodeDuplicate, "emergency access %s was reviewed by %s at height %d", d.ID, prev.Reviewer, prev.Height)
	}
	e := ReviewEntry{Outcome: rv.Outcome, Reviewer: h.ID, Height: a.block.Height, Time: a.block.Time.Unix()}
	if err := setValue(a.st, keyReview+string(d.ID), e); err != nil {
		return nil, err
	}
	if err := a.st.Delete([]byte(queueKey(keyUnreviewed, d))); err != nil {
		return nil, err
	}
	if err := a.st.Set([]byte(queueKey(keyReviewed, d)), []byte{}); err != nil {
		return nil, err
	}
	if err := a.audit(AuditEvent{Kind: AuditEmergencyReviewed, Patient: d.Patient, Record: d.Record, Hospital: h.ID,
		Custodians: rec.Custodians, Grant: d.ID, Reason: rv.Outcome}); err != nil {
		return nil, err
	}
	return []Event{{Type: "review", Attrs: []Attr{
		{Key: "grant", Value: string(d.ID), Index: true},
		{Key: "patient", Value: string(d.Patient)},
		{Key: "reviewer", Value: string(h.ID)},
		{Key: "outcome", Value: rv.Outcome},
	}}}, nil
}

// getReview returns the review of an emergency access, or nil if it has none.
func getReview(r Reader, id GrantID) (*ReviewEntry, error) {
	var e ReviewEntry
	ok, err := getValue(r, keyReview+string(id), &e)
	if err != nil || !ok {
		return nil, err
	}
	return &e, nil
}

// EmergencyCase is an emergency access in the review queue, with its review once it
// has one.
type EmergencyCase struct {
	Decision Decision     `json:"decision"`
	Review   *ReviewEntry `json:"review,omitempty"`
}

// EmergencyQueue lists emergency accesses for review: those awaiting review first, then
// the reviewed ones, each newest first (by height, then by grant ID); at most 1000.
func EmergencyQueue(r Reader) ([]EmergencyCase, error) {
	out := []EmergencyCase{}
	for _, prefix := range []string{keyUnreviewed, keyReviewed} {
		if len(out) >= maxListed {
			break
		}
		err := scan(r, prefix, func(k string, _ []byte) (bool, error) {
			d, err := GetDecision(r, GrantID(k[strings.LastIndexByte(k, '/')+1:]))
			if err != nil {
				return false, err
			}
			c := EmergencyCase{Decision: *d}
			if c.Review, err = getReview(r, d.ID); err != nil {
				return false, err
			}
			if (c.Review != nil) != (prefix == keyReviewed) {
				return false, fmt.Errorf("consent: emergency %s is indexed under %s against its review: state is corrupt", d.ID, prefix)
			}
			out = append(out, c)
			return len(out) < maxListed, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
