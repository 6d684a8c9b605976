package consent

import (
	"strings"
	"testing"
)

func TestIDSyntax(t *testing.T) {
	hex64, hex32 := strings.Repeat("ab", 32), strings.Repeat("0f", 16)
	for _, c := range []struct {
		name string
		got  bool
		want bool
	}{
		{"patient ok", PatientID(hex64).Valid(), true},
		{"patient upper", PatientID(strings.ToUpper(hex64)).Valid(), false},
		{"patient short", PatientID(hex64[:63]).Valid(), false},
		{"patient non-hex", PatientID(hex64[:63] + "g").Valid(), false},
		{"record ok", RecordID(hex32).Valid(), true},
		{"record long", RecordID(hex32 + "0").Valid(), false},
		{"tx ok", TxID(hex32).Valid(), true},
		{"grant ok", GrantID(hex32).Valid(), true},
		{"consent empty", ConsentID("").Valid(), false},
		{"hospital ok", HospitalID("bayside-2").Valid(), true},
		{"hospital 32", HospitalID(strings.Repeat("a", 32)).Valid(), true},
		{"hospital 33", HospitalID(strings.Repeat("a", 33)).Valid(), false},
		{"hospital dash first", HospitalID("-bay").Valid(), false},
		{"hospital upper", HospitalID("Bay").Valid(), false},
		{"hospital empty", HospitalID("").Valid(), false},
		{"hospital space", HospitalID("bay side").Valid(), false},
		{"chain ok", ValidChainID("medledger-testnet"), true},
		{"chain 49", ValidChainID(strings.Repeat("c", 49)), true},
		{"chain 50", ValidChainID(strings.Repeat("c", 50)), false},
		{"chain upper", ValidChainID("Medledger"), false},
		{"cid ok", ValidCID("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"), true},
		{"cid v0", ValidCID("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"), false},
		{"cid short", ValidCID("bafy"), false},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseIDErrorsQuoteInputShortly(t *testing.T) {
	_, err := ParsePatientID(strings.Repeat("x", 500))
	if err == nil || len(err.Error()) > 200 || !strings.Contains(err.Error(), "64 lowercase hex") {
		t.Fatalf("got %v, want a short error saying what a patient ID is", err)
	}
	if id, err := ParseRecordID(strings.Repeat("1", 32)); err != nil || id != RecordID(strings.Repeat("1", 32)) {
		t.Fatalf("ParseRecordID: got %q, %v", id, err)
	}
	if _, err := ParseHospitalID("Bad Name"); err == nil {
		t.Fatal("ParseHospitalID accepted a name with a space and capitals")
	}
	if _, err := ParseTxID("zz"); err == nil {
		t.Fatal("ParseTxID accepted zz")
	}
}

func TestTruncateKeepsRunes(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"aé", 2, "a…"}, // é is two bytes: never cut inside it
		{"", 0, ""},
	} {
		if got := Truncate(c.in, c.n); got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
