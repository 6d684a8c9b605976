package consent_test

import (
	"testing"

	"github.com/medledger/medledger/consent"
)

// Provisions may nest four levels deep (alternating permit and deny), not five.
func TestPolicyDepth(t *testing.T) {
	nest := func(levels int) consent.Policy {
		var ps []consent.Provision
		typ := consent.Permit
		if levels%2 == 0 {
			typ = consent.Deny
		}
		for range levels {
			ps = []consent.Provision{{Type: typ, Except: ps}}
			if typ == consent.Permit {
				typ = consent.Deny
			} else {
				typ = consent.Permit
			}
		}
		return consent.Policy{Base: consent.Deny, Provisions: ps}
	}
	for levels := 1; levels <= 4; levels++ {
		if err := nest(levels).Validate(); err != nil {
			t.Errorf("%d levels: %v", levels, err)
		}
	}
	if err := nest(5).Validate(); err == nil {
		t.Error("5 levels accepted")
	}
}
