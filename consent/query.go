package consent

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// Query answers a read of committed state. Paths:
//
//	/hospitals              every registered hospital
//	/hospital/<id>          one hospital
//	/record/<id>            one record
//	/custody/<record>       the record's custody (a CustodyStatus): threshold,
//	                        custodians that accepted, availability, and once erased
//	                        who attested the erasure and who has not
//	/records/<patient>      a patient's records
//	/consent/<id>           one consent
//	/consents/<patient>     a patient's consents
//	/grant/<id>             one access decision, with its key-release receipts and,
//	                        for a reviewed emergency access, its review
//	/decisions/<patient>    a patient's access decisions, newest first (at most 1000)
//	/emergencies            emergency accesses, newest first (at most 1000)
//	/emergency-queue        emergency accesses for review: [{"decision","review"}…],
//	                        those awaiting review (no "review") first, then the
//	                        reviewed ones, each newest first (at most 1000)
//	/release/<grant>/<hosp> the custodian's pre-release check (CheckRelease) at the
//	                        later of the last block's time and data (Unix seconds):
//	                        a Release, or the refusal's own code
//	/height                 the last applied height and block time
//	/params                 the chain's parameters (custody defaults among them)
//
// The access log (audit.go; numbers are decimal):
//
//	/audit/head             the log now: a LogRoot {"height","size","root","since"}
//	                        (root: lowercase hex; since: the height it reached size)
//	/audit/root/<height>    the log at the end of an applied height: a LogRoot
//	/audit/event/<index>    a LogEntry {"event","leaf","leaf_hash"}: the AuditEvent and
//	                        its leaf bytes (canonical CBOR, hex) for VerifyInclusion
//	/audit/inclusion/<index>[/<size>]
//	                        an InclusionProof {"index","size","root","proof":[hex…]}
//	                        of the event in the log of that size (default: now)
//	/audit/consistency/<size1>/<size2>
//	                        a ConsistencyProof {"size1","size2","root1","root2","proof"}
//	/audit/events           an AuditPage {"events":[AuditEvent…],"next"}, newest first;
//	                        data is an AuditFilter as JSON (empty: every event):
//	                        {"patient","hospital","kind","from","to","before","limit"},
//	                        all optional; from/to are block times (Unix seconds,
//	                        inclusive), before the cursor (a page's next), limit 1-500
//	                        (default 50). Unknown fields are refused.
//
// Values are JSON. An unknown path gets CodeUnknownQuery, a missing item CodeNotFound,
// a malformed argument (a number, an audit filter) CodeInvalid.
func (m *Machine) Query(r Reader, path string, data []byte) (Result, error) {
	head, arg, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	var v any
	var err error
	switch head {
	case "hospitals":
		v, err = Hospitals(r)
	case "hospital":
		v, err = getHospital(r, HospitalID(arg))
	case "record":
		v, err = GetRecord(r, RecordID(arg))
	case "records":
		v, err = PatientRecords(r, PatientID(arg))
	case "custody":
		v, err = Custody(r, RecordID(arg))
	case "params":
		v, err = GetParams(r)
	case "consent":
		v, err = GetConsent(r, ConsentID(arg))
	case "consents":
		v, err = Consents(r, PatientID(arg))
	case "grant":
		v, err = grantWithReceipts(r, GrantID(arg))
	case "decisions":
		v, err = patientDecisions(r, PatientID(arg))
	case "emergencies":
		v, err = decisionsNewestFirst(r, keyEmergency)
	case "emergency-queue":
		v, err = EmergencyQueue(r)
	case "release":
		// /release/{grant}/{requester}: the custodian's pre-release check against
		// committed state, at the later of the last block's time and the time the
		// caller gives in data (decimal Unix seconds: its clock). A failed check keeps
		// its code.
		grant, requester, _ := strings.Cut(arg, "/")
		now, terr := BlockTime(r)
		if terr != nil {
			return Result{}, terr
		}
		if t, perr := strconv.ParseInt(string(data), 10, 64); perr == nil && t > now {
			now = t
		}
		d, rec, cerr := CheckRelease(r, GrantID(grant), HospitalID(requester), now)
		var rej *Rejection
		if errors.As(cerr, &rej) {
			return Result{Code: rej.Code, Log: rej.Log}, nil
		}
		if cerr != nil {
			return Result{}, cerr
		}
		v = Release{Decision: *d, Record: *rec}
	case "audit":
		v, err = auditQuery(r, arg, data)
	case "height":
		var h Height
		var t int64
		h, t, err = meta(r)
		v = map[string]int64{"height": int64(h), "time": t}
	default:
		return Result{Code: CodeUnknownQuery, Log: "unknown query path " + Truncate(path, 80)}, nil
	}
	var rej *Rejection
	if errors.As(err, &rej) {
		code := CodeNotFound
		if rej.Code == CodeInvalid || rej.Code == CodeUnknownQuery {
			code = rej.Code
		}
		return Result{Code: code, Log: rej.Log}, nil
	}
	if err != nil {
		return Result{}, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Result{}, err
	}
	return Result{Code: OK, Value: b}, nil
}

// PatientRecords returns a patient's records, in record ID order.
func PatientRecords(r Reader, p PatientID) ([]Record, error) {
	out := []Record{}
	err := scan(r, keyPatRecord+string(p)+"/", func(k string, _ []byte) (bool, error) {
		rec, err := GetRecord(r, RecordID(k[strings.LastIndexByte(k, '/')+1:]))
		if err != nil {
			return false, err
		}
		out = append(out, *rec)
		return true, nil
	})
	return out, err
}

// Release is what a custodian needs to release a key: the grant and its record.
type Release struct {
	Decision Decision `json:"decision"`
	Record   Record   `json:"record"`
}

// GrantInfo is a decision with the key releases made for it.
type GrantInfo struct {
	Decision
	Receipts []ReceiptEntry `json:"receipts"`
	Review   *ReviewEntry   `json:"review,omitempty"` // an emergency access's review, once reviewed
}

func grantWithReceipts(r Reader, id GrantID) (*GrantInfo, error) {
	d, err := GetDecision(r, id)
	if err != nil {
		return nil, err
	}
	g := &GrantInfo{Decision: *d, Receipts: []ReceiptEntry{}}
	if g.Review, err = getReview(r, id); err != nil {
		return nil, err
	}
	err = scan(r, keyReceipt+string(id)+"/", func(_ string, v []byte) (bool, error) {
		var e ReceiptEntry
		if err := decMode.Unmarshal(v, &e); err != nil {
			return false, err
		}
		g.Receipts = append(g.Receipts, e)
		return true, nil
	})
	return g, err
}

const maxListed = 1000

// patientDecisions lists a patient's access decisions, newest first, from the access
// log's index of the patient's events.
func patientDecisions(r Reader, p PatientID) ([]Decision, error) {
	out := []Decision{}
	prefix := keyAuditPatient + string(p) + "/"
	err := scan(r, prefix, func(k string, v []byte) (bool, error) {
		switch AuditKind(v) {
		case AuditAccessGranted, AuditAccessDenied, AuditEmergency:
		default:
			return true, nil
		}
		i, err := parseNewestFirst(k[len(prefix):])
		if err != nil {
			return false, err
		}
		e, err := eventAt(r, i)
		if err != nil {
			return false, err
		}
		d, err := GetDecision(r, e.Grant)
		if err != nil {
			return false, err
		}
		out = append(out, *d)
		return len(out) < maxListed, nil
	})
	return out, err
}

// decisionsNewestFirst lists the decisions indexed under prefix (keys end in
// <height>/<grant>), newest first.
func decisionsNewestFirst(r Reader, prefix string) ([]Decision, error) {
	var ids []GrantID
	err := scan(r, prefix, func(k string, _ []byte) (bool, error) {
		ids = append(ids, GrantID(k[strings.LastIndexByte(k, '/')+1:]))
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	out := []Decision{}
	for i := len(ids) - 1; i >= 0 && len(out) < maxListed; i-- {
		d, err := GetDecision(r, ids[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *d)
	}
	return out, nil
}
