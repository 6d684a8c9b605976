package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/fhir"
)

// maxResource bounds the body of anything but an ingested Bundle (a Consent, a
// Parameters): far above any real Consent, far below a Bundle.
const maxResource = 1 << 20

// patientParam reads the patient search parameter: a patient ID, or a reference to
// one (Patient/{id}), once.
func patientParam(r *http.Request) (consent.PatientID, error) {
	vals := r.URL.Query()["patient"]
	if len(vals) != 1 {
		return "", badRequest("required", "", "give the patient once: ?patient={patient ID} (64 lowercase hex digits)")
	}
	id := strings.TrimPrefix(vals[0], "Patient/")
	if !consent.PatientID(id).Valid() {
		return "", badRequest("value", "", "patient '%s' is not a patient ID: 64 lowercase hex digits (the patient's Ed25519 public key)", consent.Truncate(vals[0], 80))
	}
	return consent.PatientID(id), nil
}

// recordParam reads the {id} of a /records/{id} path.
func recordParam(r *http.Request) (consent.RecordID, error) {
	id := r.PathValue("id")
	if !consent.RecordID(id).Valid() {
		return "", badRequest("value", "", "'%s' is not a record ID: 32 lowercase hex digits", consent.Truncate(id, 80))
	}
	return consent.RecordID(id), nil
}

// consentParam reads the {id} of a /fhir/Consent/{id}/… path.
func consentParam(r *http.Request) (consent.ConsentID, error) {
	id := r.PathValue("id")
	if !consent.TxID(id).Valid() {
		return "", badRequest("value", "", "'%s' is not a consent ID: 32 lowercase hex digits", consent.Truncate(id, 80))
	}
	return consent.ConsentID(id), nil
}

// requireJSON accepts application/fhir+json or application/json (in UTF-8).
func requireJSON(r *http.Request) error {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && (mt == "application/fhir+json" || mt == "application/json") {
		if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") {
			return nil
		}
	}
	return &problem{status: http.StatusUnsupportedMediaType, issue: issue("not-supported", "",
		"send FHIR JSON: Content-Type: application/fhir+json (or application/json), UTF-8")}
}

// readResource reads a JSON body of at most limit bytes and validates it as a FHIR R4
// resource of type want.
func readResource(w http.ResponseWriter, r *http.Request, want string, limit int64) (*fhir.Resource, error) {
	if err := requireJSON(r); err != nil {
		return nil, err
	}
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, errSlowBody) {
			return nil, err
		}
		return nil, badRequest("structure", "", "the body could not be read")
	}
	res, err := fhir.Parse(data, fhir.Limits{MaxBytes: limit})
	if err != nil {
		return nil, err
	}
	if res.Type != want {
		return nil, badRequest("invalid", "resourceType", "resourceType is '%s'; a %s is required", consent.Truncate(res.Type, 64), want)
	}
	return res, nil
}

// readParameters reads a FHIR Parameters body and returns its parameters by name;
// each must be one of names, at most once.
func readParameters(w http.ResponseWriter, r *http.Request, limit int64, names ...string) (map[string]fhir.Parameter, error) {
	res, err := readResource(w, r, "Parameters", limit)
	if err != nil {
		return nil, err
	}
	var ps fhir.Parameters
	if err := json.Unmarshal(res.Raw, &ps); err != nil {
		return nil, badRequest("structure", "Parameters", "not a Parameters resource")
	}
	out := map[string]fhir.Parameter{}
	for i, p := range ps.Parameter {
		path := "Parameters.parameter[" + strconv.Itoa(i) + "]"
		if !slices.Contains(names, p.Name) {
			return nil, badRequest("not-supported", path+".name", "unknown parameter '%s'; this operation takes: %s", consent.Truncate(p.Name, 64), strings.Join(names, ", "))
		}
		if _, dup := out[p.Name]; dup {
			return nil, badRequest("invalid", path, "parameter '%s' is given twice", p.Name)
		}
		out[p.Name] = p
	}
	return out, nil
}

// base64Param returns a valueBase64Binary parameter's bytes.
func base64Param(ps map[string]fhir.Parameter, name string) ([]byte, error) {
	p, ok := ps[name]
	if !ok || p.ValueBase64Binary == "" {
		return nil, badRequest("required", "Parameters.parameter", "parameter '%s' (valueBase64Binary) is required", name)
	}
	b, err := base64.StdEncoding.DecodeString(p.ValueBase64Binary)
	if err != nil {
		return nil, badRequest("value", "Parameters.parameter", "parameter '%s' is not base64", name)
	}
	return b, nil
}

// truncate shortens s to at most n bytes (plus an ellipsis) for a message.
