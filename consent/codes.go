package consent

// Code is a rejected tx's response code; 0 is success. Every code the chain returns is
// in this table, so clients can branch on it.
type Code uint32

// Codes.
const (
	OK                  Code = 0
	CodeDecode          Code = 1  // not a well-formed, canonical tx
	CodeSignature       Code = 2  // signature does not verify over the body bytes
	CodeChainID         Code = 3  // tx is for another chain
	CodeExpired         Code = 4  // expiry height passed, or too far ahead
	CodeReplay          Code = 5  // nonce already used by this signer
	CodeUnauthorized    Code = 6  // signer may not do this (not the patient / not the hospital's key / not a custodian)
	CodeUnknownHospital Code = 7  // no such registered hospital
	CodeUnknownRecord   Code = 8  // no such record
	CodeUnknownConsent  Code = 9  // no such consent
	CodeUnknownGrant    Code = 10 // no such access grant
	CodeInvalid         Code = 11 // a field is malformed (ID shape, purpose code, policy, …)
	CodeDuplicate       Code = 12 // already registered / already revoked / already voted
	CodeErased          Code = 13 // the record is erased
	CodeNotGranted      Code = 14 // a receipt for a denial or an expired grant
	CodeNoCustody       Code = 15 // a receipt from a custodian that has not accepted custody of the threshold record
	CodeUnknownQuery    Code = 20 // query path unknown
	CodeNotFound        Code = 21 // query found nothing
	// CodeNotCurrent is not a chain's answer but a custodian's: it cannot show that its
	// state is current (catching up, stalled, its receipt not committed in time), so it
	// releases nothing. The requester retries later or at another custodian.
	CodeNotCurrent Code = 22
)

var codeNames = map[Code]string{
	OK: "ok", CodeDecode: "decode", CodeSignature: "signature", CodeChainID: "chain-id",
	CodeExpired: "expired", CodeReplay: "replay", CodeUnauthorized: "unauthorized",
	CodeUnknownHospital: "unknown-hospital", CodeUnknownRecord: "unknown-record",
	CodeUnknownConsent: "unknown-consent", CodeUnknownGrant: "unknown-grant",
	CodeInvalid: "invalid", CodeDuplicate: "duplicate", CodeErased: "erased",
	CodeNotGranted: "not-granted", CodeUnknownQuery: "unknown-query", CodeNotFound: "not-found",
	CodeNotCurrent: "not-current", CodeNoCustody: "no-custody",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return "unknown"
}

// Rejection is a tx refused with a code and a one-line log.
type Rejection struct {
	Code Code
	Log  string
}

func (r *Rejection) Error() string { return "consent: " + r.Code.String() + ": " + r.Log }

func reject(c Code, format string, args ...any) *Rejection {
	return &Rejection{Code: c, Log: sprintf(format, args...)}
}
