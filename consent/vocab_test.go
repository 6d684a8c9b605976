package consent_test

import (
	"testing"

	"github.com/medledger/medledger/consent"
)

// The vocabularies the chain decides with cannot be changed through what the package
// exports: a caller writing into a returned list changes its own copy only.
func TestVocabulariesImmutable(t *testing.T) {
	reasons := consent.EmergencyReasons()
	reasons[0] = "any-reason"
	if consent.IsEmergencyReason("any-reason") || !consent.IsEmergencyReason(consent.EmergencyReasons()[0]) {
		t.Error("writing into EmergencyReasons() changed the chain's vocabulary")
	}
	outcomes := consent.ReviewOutcomes()
	outcomes[0] = "any-outcome"
	if consent.IsReviewOutcome("any-outcome") || !consent.IsReviewOutcome("justified") {
		t.Error("writing into ReviewOutcomes() changed the chain's vocabulary")
	}
	purposes := consent.Purposes()
	purposes[0] = "ANY"
	if consent.IsPurpose("ANY") || !consent.IsPurpose("BTG") {
		t.Error("writing into Purposes() changed the chain's vocabulary")
	}
	kinds := consent.AuditKinds()
	kinds[0] = "any-kind"
	if consent.IsAuditKind("any-kind") || !consent.IsAuditKind(consent.AuditConsentGranted) {
		t.Error("writing into AuditKinds() changed the chain's vocabulary")
	}
	classes := consent.DataClasses()
	classes[0] = "Anything"
	if consent.IsDataClass("Anything") || !consent.IsDataClass("Account") {
		t.Error("writing into DataClasses() changed the chain's vocabulary")
	}
}
