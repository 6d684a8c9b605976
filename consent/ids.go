package consent

import "fmt"

// The syntax of every identifier the chain stores. These are the only definitions: the
// API, the CLI, the home config and the audit exports check IDs with these functions.

// Valid reports whether id is 64 lowercase hex digits (an Ed25519 public key).
func (id PatientID) Valid() bool { return isLowerHex(string(id), 64) }

// Valid reports whether id is a registrable hospital name: [a-z0-9][a-z0-9-]{0,31}.
func (id HospitalID) Valid() bool { return isName(string(id), 32) }

// Valid reports whether id is 32 lowercase hex digits.
func (id RecordID) Valid() bool { return isLowerHex(string(id), 32) }

// Valid reports whether id has a TxID's syntax.
func (id ConsentID) Valid() bool { return TxID(id).Valid() }

// Valid reports whether id has a TxID's syntax.
func (id GrantID) Valid() bool { return TxID(id).Valid() }

// Valid reports whether id is 32 lowercase hex digits.
func (id TxID) Valid() bool { return isLowerHex(string(id), 32) }

// ValidChainID reports whether s is a chain ID this project creates and accepts:
// [a-z0-9][a-z0-9-]{0,48} (CometBFT allows at most 50 bytes).
func ValidChainID(s string) bool { return isName(s, 49) }

// ValidCID reports whether s looks like a base32 CIDv1 (the form records register).
func ValidCID(s string) bool {
	if len(s) < 21 || len(s) > 121 || s[0] != 'b' {
		return false
	}
	for _, c := range s[1:] {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// ParsePatientID returns s as a PatientID, or an error saying what a patient ID is.
func ParsePatientID(s string) (PatientID, error) {
	if id := PatientID(s); id.Valid() {
		return id, nil
	}
	return "", fmt.Errorf("patient ID %q must be 64 lowercase hex digits (the patient's public key)", Truncate(s, 80))
}

// ParseHospitalID returns s as a HospitalID, or an error saying what a hospital ID is.
func ParseHospitalID(s string) (HospitalID, error) {
	if id := HospitalID(s); id.Valid() {
		return id, nil
	}
	return "", fmt.Errorf("hospital ID %q must be 1-32 of a-z, 0-9 and '-', not starting with '-'", Truncate(s, 80))
}

// ParseRecordID returns s as a RecordID, or an error saying what a record ID is.
func ParseRecordID(s string) (RecordID, error) {
	if id := RecordID(s); id.Valid() {
		return id, nil
	}
	return "", fmt.Errorf("record ID %q must be 32 lowercase hex digits", Truncate(s, 80))
}

// ParseTxID returns s as a TxID (also the form of grant and consent IDs), or an error.
func ParseTxID(s string) (TxID, error) {
	if id := TxID(s); id.Valid() {
		return id, nil
	}
	return "", fmt.Errorf("ID %q must be 32 lowercase hex digits", Truncate(s, 80))
}

// Truncate returns s cut to at most n bytes (on a rune boundary) with "…" when cut, for
// quoting untrusted input in errors and logs.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !runeStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func runeStart(b byte) bool { return b&0xC0 != 0x80 }

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isName: [a-z0-9][a-z0-9-]{0,max-1}.
func isName(s string, max int) bool {
	if len(s) == 0 || len(s) > max || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
