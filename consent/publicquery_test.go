package consent_test

import (
	"testing"

	"github.com/medledger/medledger/consent"
)

func TestPublicQuery(t *testing.T) {
	for path, want := range map[string]bool{
		"/hospitals":                  true,
		"/hospital/ada":               true,
		"/height":                     true,
		"/audit/head":                 true,
		"/audit/root/12":              true,
		"/audit/inclusion/3/8":        true,
		"/audit/consistency/2/9":      true,
		"audit/head":                  true, // Query takes a path without its leading slash too
		"/record/0123":                false,
		"/records/abcd":               false,
		"/consent/0123":               false,
		"/consents/abcd":              false,
		"/grant/0123":                 false,
		"/decisions/abcd":             false,
		"/emergencies":                false,
		"/emergency-queue":            false,
		"/release/0123/ada":           false,
		"/audit/event/3":              false,
		"/audit/events":               false,
		"/audit/headless":             false,
		"/audit":                      false,
		"/hospitalsx":                 false,
		"/nonsense":                   false,
		"":                            false,
		"/audit/events/../head":       false,
		"//hospitals":                 false,
		"/Hospitals":                  false,
		"/audit/event/3/../../head/x": false,
	} {
		if got := consent.PublicQuery(path); got != want {
			t.Errorf("PublicQuery(%q) = %v, want %v", path, got, want)
		}
	}
}
