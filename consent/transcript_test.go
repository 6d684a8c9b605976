package consent_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/group"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/consent/consenttest"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of transcript tests")

// TestTranscripts runs consent/testdata/*.txt: each case is a command, a line "----",
// the expected output, and a blank line. Each tx command is applied in a block of its
// own (block time advances 10 s per block unless told otherwise).
func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runTranscript(t, f) })
	}
}

func runTranscript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := newRunner()
	var out strings.Builder
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			continue
		}
		cmdLine := i + 1
		out.WriteString(line + "\n")
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command without a ---- line", path, cmdLine)
		}
		i += 2
		var want []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		i-- // the blank line is written by the loop
		got := r.do(t, line)
		out.WriteString("----\n" + got + "\n")
		if !*rewrite && got != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, cmdLine, line, got, strings.Join(want, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type runner struct {
	m       *consent.Machine
	st      *consenttest.MemStore
	b       consenttest.Builder
	height  consent.Height
	now     time.Time
	alias   map[string]string // alias -> ID
	name    map[string]string // ID -> alias
	lastTx  []byte
	started bool
	// commitments are the share commitments of each sharing, by name (a record's
	// sharing is named after the record).
	commitments map[string][]byte
}

func newRunner() *runner {
	return &runner{
		m: consent.NewMachine(), st: consenttest.NewMemStore(), b: consenttest.Builder{ChainID: "transcript"},
		now:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		alias: map[string]string{}, name: map[string]string{}, commitments: map[string][]byte{},
	}
}

// custody sets a registration's threshold custody from opts: threshold=K names k,
// points=N makes the commitments N elements (default k), commitments=bad makes them
// malformed. The commitments are well-formed crypto encodings derived from the
// record's name, so transcripts are stable; the chain checks only their form.
func (r *runner) custody(t *testing.T, reg *consent.RegisterRecord, name string, opts map[string]string) {
	if opts["threshold"] == "" {
		return
	}
	reg.Threshold, _ = strconv.Atoi(opts["threshold"])
	n := reg.Threshold
	if p := opts["points"]; p != "" {
		n, _ = strconv.Atoi(p)
	}
	c := []byte{2, byte(n)} // crypto.Commitments.Bytes: tag 2, k, then the elements
	for i := range n {
		e, err := group.Ristretto255.HashToElement([]byte(fmt.Sprintf("%s/%d", name, i)), []byte("transcript")).MarshalBinaryCompress()
		if err != nil {
			t.Fatal(err)
		}
		c = append(c, e...)
	}
	if opts["commitments"] == "bad" {
		c = append(c[:2], make([]byte, 32*n)...) // identity elements
	}
	reg.Commitments = c
	r.commitments[name] = c
	r.name[hex.EncodeToString(c)] = "commitments:" + name
}

// args splits a command into positional words and key=value options.
func args(line string) ([]string, map[string]string) {
	var pos []string
	opts := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok && !strings.HasPrefix(f, "{") {
			opts[k] = v
		} else {
			pos = append(pos, f)
		}
	}
	return pos, opts
}

func (r *runner) do(t *testing.T, line string) string {
	cmd, rest, _ := strings.Cut(line, " ")
	if cmd == "grant" {
		return r.grant(t, rest)
	}
	pos, opts := args(rest)
	switch cmd {
	case "genesis":
		return r.genesis(t, opts)
	case "advance":
		d, err := time.ParseDuration(pos[0])
		if err != nil {
			t.Fatal(err)
		}
		r.now = r.now.Add(d)
		return "ok"
	case "replay":
		return r.apply(t, r.lastTx, "")
	case "record":
		body := consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &consent.RegisterRecord{
			Record: consent.RecordID(recordID(pos[0])), CID: "bafybeigdyrztktx5b5m2y4sogf2hf5uq3k5knv5c5k2pvx7aw5fgi7whtm",
			Patient: patientOf(opts["patient"]), Classes: classes(opts["classes"]), Custodians: hospitals(opts["custodians"]),
		}}
		r.alias[pos[0]] = recordID(pos[0])
		r.name[recordID(pos[0])] = pos[0]
		r.custody(t, body.RegisterRecord, pos[0], opts)
		return r.send(t, body, pos, opts, firstOf(opts["custodians"]))
	case "custody":
		sharing := pos[1]
		if c := opts["commit"]; c != "" {
			sharing = c
		}
		sum := sha256.Sum256(r.commitments[sharing])
		body := consent.Body{Kind: consent.KindAcceptCustody, AcceptCustody: &consent.AcceptCustody{
			Custodian: consent.HospitalID(pos[0]), Record: consent.RecordID(r.id(pos[1])), Commitments: sum[:]}}
		return r.send(t, body, pos, opts, pos[0])
	case "attest":
		body := consent.Body{Kind: consent.KindAttestErasure, AttestErasure: &consent.AttestErasure{
			Custodian: consent.HospitalID(pos[0]), Record: consent.RecordID(r.id(pos[1]))}}
		return r.send(t, body, pos, opts, pos[0])
	case "revoke":
		body := consent.Body{Kind: consent.KindRevoke, Revoke: &consent.Revoke{Consent: consent.ConsentID(r.id(pos[1]))}}
		return r.send(t, body, pos, opts, pos[0])
	case "request":
		body := consent.Body{Kind: consent.KindRequest, Request: &consent.Request{
			Requester: consent.HospitalID(pos[0]), Record: consent.RecordID(r.id(pos[1])), Purpose: consent.Purpose(pos[2])}}
		return r.send(t, body, pos, opts, pos[0])
	case "emergency":
		body := consent.Body{Kind: consent.KindEmergency, Emergency: &consent.Emergency{
			Requester: consent.HospitalID(pos[0]), Record: consent.RecordID(r.id(pos[1])), Reason: pos[2]}}
		return r.send(t, body, pos, opts, pos[0])
	case "receipt":
		body := consent.Body{Kind: consent.KindReceipt, Receipt: &consent.Receipt{
			Custodian: consent.HospitalID(pos[0]), Grant: consent.GrantID(r.id(pos[1]))}}
		return r.send(t, body, pos, opts, pos[0])
	case "review":
		body := consent.Body{Kind: consent.KindReview, Review: &consent.Review{Grant: consent.GrantID(r.id(pos[1])), Outcome: pos[2]}}
		return r.send(t, body, pos, opts, pos[0])
	case "queue":
		return r.queue(t)
	case "erase":
		body := consent.Body{Kind: consent.KindErase, Erase: &consent.Erase{Record: consent.RecordID(r.id(pos[1]))}}
		return r.send(t, body, pos, opts, pos[0])
	case "propose":
		h := consenttest.Hospital(pos[1], 1)
		body := consent.Body{Kind: consent.KindProposeHospital, ProposeHospital: &h}
		return r.send(t, body, pos, opts, pos[0])
	case "garbage":
		return r.apply(t, []byte(pos[0]), "")
	case "query":
		return r.query(t, pos[0])
	case "audit", "audit-verify", "audit-tamper":
		return r.audit(t, cmd, pos, opts)
	case "release":
		d, _, err := consent.CheckRelease(r.st, consent.GrantID(r.id(pos[1])), consent.HospitalID(pos[0]), r.now.Unix())
		// The custodian asks through the query path, at the last block's time.
		res, qerr := r.m.Query(r.st, "/release/"+r.id(pos[1])+"/"+pos[0], []byte(strconv.FormatInt(r.now.Unix(), 10)))
		if qerr != nil {
			t.Fatal(qerr)
		}
		if err != nil {
			var rej *consent.Rejection
			if !errors.As(err, &rej) || res.Code != rej.Code || res.Log != rej.Log {
				t.Fatalf("query /release answered %s %q, CheckRelease %v", res.Code, res.Log, err)
			}
			return "refused " + r.names(err.Error())
		}
		var rel consent.Release
		if res.Code != consent.OK || json.Unmarshal(res.Value, &rel) != nil || rel.Decision != *d {
			t.Fatalf("query /release answered %s %q, CheckRelease granted %s", res.Code, res.Log, d.ID)
		}
		return "release " + r.names(string(d.Record))
	}
	t.Fatalf("unknown command %q", cmd)
	return ""
}

// queue prints /emergency-queue, one emergency a line: grant, requester, record,
// reason, then its review (outcome, reviewer, height) or "unreviewed".
func (r *runner) queue(t *testing.T) string {
	res, err := r.m.Query(r.st, "/emergency-queue", nil)
	if err != nil || res.Code != consent.OK {
		t.Fatalf("/emergency-queue: %v %s %s", err, res.Code, res.Log)
	}
	var cases []consent.EmergencyCase
	if err := json.Unmarshal(res.Value, &cases); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range cases {
		d := c.Decision
		line := fmt.Sprintf("%s h%d %s %s %s: ", d.ID, d.Height, d.Requester, d.Record, d.Emergency)
		if c.Review == nil {
			line += "unreviewed"
		} else {
			line += fmt.Sprintf("%s by %s at h%d", c.Review.Outcome, c.Review.Reviewer, c.Review.Height)
		}
		lines = append(lines, r.names(line))
	}
	if len(lines) == 0 {
		return "empty"
	}
	return strings.Join(lines, "\n")
}

func (r *runner) genesis(t *testing.T, opts map[string]string) string {
	g := consent.Genesis{}
	for _, h := range strings.Split(opts["hospitals"], ",") {
		g.Hospitals = append(g.Hospitals, consenttest.Hospital(h, 1))
	}
	g.Params.Custodians, _ = strconv.Atoi(opts["custodians"])
	g.Params.Threshold, _ = strconv.Atoi(opts["threshold"])
	if v := opts["grant-validity"]; v != "" {
		d, _ := time.ParseDuration(v)
		g.Params.GrantValidity = int64(d.Seconds())
	}
	b, _ := json.Marshal(g)
	if err := r.m.InitChain(r.st, "transcript", b, consent.Block{Height: 0, Time: r.now}); err != nil {
		return "error: " + err.Error()
	}
	r.started = true
	return "ok"
}

var (
	nowExpr    = regexp.MustCompile(`now([+-][0-9]+[smhd]?)?`)
	recordExpr = regexp.MustCompile(`"rec:([a-z0-9]+)"`)
)

// grant PATIENT as=ALIAS POLICY-JSON [signer=NAME]: "now", "now+3600", "now-10m" in
// the JSON stand for block times, "rec:NAME" for the ID of record NAME (registered
// with `record NAME` or not).
func (r *runner) grant(t *testing.T, rest string) string {
	patient, rest, _ := strings.Cut(rest, " ")
	i := strings.Index(rest, "{")
	j := strings.LastIndex(rest, "}")
	pos, opts := args(rest[:i] + " " + rest[j+1:])
	js := nowExpr.ReplaceAllStringFunc(rest[i:j+1], func(s string) string {
		d := time.Duration(0)
		if len(s) > 3 {
			unit := s[len(s)-1]
			num := s[3:]
			mult := time.Second
			switch unit {
			case 'm':
				mult, num = time.Minute, num[:len(num)-1]
			case 'h':
				mult, num = time.Hour, num[:len(num)-1]
			case 'd':
				mult, num = 24*time.Hour, num[:len(num)-1]
			case 's':
				num = num[:len(num)-1]
			}
			n, _ := strconv.Atoi(num)
			d = time.Duration(n) * mult
		}
		return strconv.FormatInt(r.now.Add(d).Unix(), 10)
	})
	js = recordExpr.ReplaceAllStringFunc(js, func(s string) string {
		name := recordExpr.FindStringSubmatch(s)[1]
		r.name[recordID(name)] = name
		return `"` + recordID(name) + `"`
	})
	var pol consent.Policy
	if err := json.Unmarshal([]byte(js), &pol); err != nil {
		t.Fatalf("policy JSON: %v", err)
	}
	body := consent.Body{Kind: consent.KindGrant, Grant: &consent.Grant{Patient: patientOf(patient), Policy: pol}}
	return r.send(t, body, append([]string{patient}, pos...), opts, patient)
}

// send signs body as opts["signer"] (default signer), applies it in a new block and
// names the tx opts["as"].
func (r *runner) send(t *testing.T, body consent.Body, _ []string, opts map[string]string, signer string) string {
	if s := opts["signer"]; s != "" {
		signer = s
	}
	if c := opts["chain"]; c != "" {
		body.ChainID = c
	}
	body.Expiry = r.height + 10
	if e := opts["expiry"]; e != "" {
		n, _ := strconv.Atoi(e)
		body.Expiry = r.height + consent.Height(n)
	}
	tx := r.b.Tx(body, consenttest.NewKey(signer))
	if opts["tamper"] == "true" {
		tx[len(tx)-1] ^= 1
	}
	r.lastTx = tx
	return r.apply(t, tx, opts["as"])
}

func (r *runner) apply(t *testing.T, tx []byte, as string) string {
	// CheckTx against committed state must agree with the block's verdict on validity.
	check, err := r.m.CheckTx(r.st, tx)
	if err != nil {
		t.Fatal(err)
	}
	r.height++
	r.now = r.now.Add(10 * time.Second)
	b := consent.Block{Height: r.height, Time: r.now}
	before := r.st.Hash()
	res, err := r.m.DeliverTx(r.st, tx, b)
	if err != nil {
		t.Fatal(err)
	}
	// A rejected tx writes nothing (the node's adapter relies on it: AtomicTxs).
	if res.Code != consent.OK && r.st.Hash() != before {
		t.Errorf("a tx rejected with %s changed the state", res.Code)
	}
	if err := r.m.EndBlock(r.st, b); err != nil {
		t.Fatal(err)
	}
	if (check.Code == consent.OK) != (res.Code == consent.OK) && res.Code != consent.CodeExpired {
		t.Errorf("CheckTx said %s, DeliverTx %s", check.Code, res.Code)
	}
	if res.Code != consent.OK {
		return fmt.Sprintf("rejected %s: %s", res.Code, r.names(res.Log))
	}
	id := string(consent.IDOf(tx))
	if as != "" {
		r.alias[as] = id
		r.name[id] = as
	}
	return r.describe(res)
}

// describe prints the decision events of a result; "ok" otherwise.
func (r *runner) describe(res consent.Result) string {
	for _, e := range res.Events {
		attrs := map[string]string{}
		for _, a := range e.Attrs {
			attrs[a.Key] = a.Value
		}
		switch e.Type {
		case "access":
			out := attrs["decision"]
			if g, err := consent.GetDecision(r.st, consent.GrantID(attrs["grant"])); err == nil {
				if g.Consent != "" {
					out += " consent=" + r.names(string(g.Consent))
				}
				if g.Reason != "" {
					out += " reason=" + g.Reason
				}
				if g.Emergency != "" {
					out += " emergency=" + g.Emergency
				}
			}
			return out
		case "custody":
			return "ok accepted=" + attrs["accepted"] + " available=" + attrs["available"]
		case "erasure":
			return "ok complete=" + attrs["complete"]
		case "hospital":
			if attrs["registered"] == "true" {
				return "ok registered " + attrs["id"]
			}
			return "ok vote " + attrs["voter"] + " for " + attrs["id"]
		}
	}
	return "ok"
}

func (r *runner) query(t *testing.T, path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if id, ok := r.alias[p]; ok {
			parts[i] = id
		} else if strings.HasPrefix(p, "patient:") {
			parts[i] = string(patientOf(strings.TrimPrefix(p, "patient:")))
		}
	}
	res, err := r.m.Query(r.st, strings.Join(parts, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != consent.OK {
		return fmt.Sprintf("%s: %s", res.Code, r.names(res.Log))
	}
	return r.names(string(res.Value))
}

// names replaces IDs in s by their aliases, and patient IDs by the patient's name.
func (r *runner) names(s string) string {
	for id, name := range r.name {
		s = strings.ReplaceAll(s, id, name)
	}
	for _, p := range []string{"alice", "bob", "carol", "mallory"} {
		s = strings.ReplaceAll(s, string(patientOf(p)), "patient:"+p)
	}
	return s
}

func (r *runner) id(alias string) string {
	if id, ok := r.alias[alias]; ok {
		return id
	}
	return alias
}

func recordID(alias string) string {
	sum := sha256.Sum256([]byte(alias))
	return hex.EncodeToString(sum[:16])
}

func patientOf(name string) consent.PatientID { return consenttest.NewKey(name).Patient() }

func classes(s string) []consent.DataClass {
	var out []consent.DataClass
	for _, c := range strings.Split(s, ",") {
		if c != "" {
			out = append(out, consent.DataClass(c))
		}
	}
	return out
}

func hospitals(s string) []consent.HospitalID {
	var out []consent.HospitalID
	for _, h := range strings.Split(s, ",") {
		if h != "" {
			out = append(out, consent.HospitalID(h))
		}
	}
	return out
}

func firstOf(s string) string { f, _, _ := strings.Cut(s, ","); return f }
