package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/auditor"
	"github.com/medledger/medledger/node/nodetest"
)

// TestPages is issue 12's scenario through Chromium against four real hospital
// nodes: a patient creates a key in the page and signs in; Ada ingests a record of
// theirs; the patient grants Bayside TREAT in the page; Bayside's clinician reads the
// record through the API and the page shows the access within one block; the
// patient revokes, Bayside is denied, and the page shows the denial; a second tab
// still showing the consent in force tries to revoke it again and is told, in a
// sentence, that it is already revoked; Bayside breaks the glass, the page shows the
// emergency apart, Ada's privacy officer's review queue shows it live (within a
// block, no reload), and the officer reviews it there — a second emergency arriving
// meanwhile refreshes the queue without replacing the item under review — which the
// patient's page then shows; the page's accounting downloads (CSV and JSON) are the API's; the patient
// gives and revokes a consent with the keyboard alone, every element reached showing
// the focus outline, and a fifth change, over Ada's per-patient limit, is refused in
// a sentence; the officer searches ten events to a
// page, pages through them all with "Older events", opens an event with its proof
// checked, exports, and downloads the patient's accounting (CSV and JSON, the API's);
// on Dunmore, whose chain RPC is off, the officer's page says an event's proof was
// not checked, and why. Then: another patient (a key made with `medledger patient
// keygen`, imported into another browser) sees none of this patient's data, and no
// page wrote an error to the console.
func TestPages(t *testing.T) {
	b := newBrowser(t)
	net := nodetest.StartConsortiumWith(t, 4, func(i int, c *node.Config) {
		switch i {
		case 0: // Ada allows a patient four consent changes, then one a minute
			c.Home.Config.API.PatientBurst, c.Home.Config.API.PatientRate = 4, 1
		case 3: // Dunmore runs without the chain's RPC: its officer's page cannot check proofs
			c.Home.Config.Chain.RPCListen = ""
		}
	})
	ada, bayside, dunmore := net.Nodes[0], net.Nodes[1], net.Nodes[3]
	adaTokens, bayTokens := tokens(t, net, 0), tokens(t, net, 1)

	p := b.newTab(false)
	patient, backup := createKeyInPage(t, p, ada.APIURL())
	rec, err := ada.Ingest(nodetest.Ctx(t), patient, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatal(err)
	}

	// The session survives a reload; the records are the chain's.
	p.open(ada.APIURL() + "/app/")
	p.wait(`!document.getElementById("signed-in").hidden && document.querySelectorAll("#records tbody tr").length === 1`, 20*time.Second)
	row := p.eval(`document.querySelector("#records tbody tr").textContent`)
	if !strings.Contains(row, "Ada General Hospital (ada)") || !strings.Contains(row, string(rec.Classes[0])) {
		t.Errorf("records row = %q, want the custodian's name and the record's classes %v", row, rec.Classes)
	}
	p.shot("patient-signed-in")

	grantInPage(t, p)
	stale := b.newTab(false) // the patient's page in a second tab, still showing the consent in force
	stale.open(ada.APIURL() + "/app/")
	stale.wait(`document.querySelectorAll("#consents li.consent:not(.revoked)").length === 1`, 20*time.Second)
	read := func() (int, string) {
		return apiCall(t, "GET", bayside.APIURL()+"/records/"+string(rec.ID)+"?purpose=TREAT", bayTokens["clinician"])
	}
	if status, body := read(); status != http.StatusOK {
		t.Fatalf("bayside's read after the grant: %d %s", status, body)
	}
	waitWithinBlock(t, p, ada, `#activity li[data-kind="access-granted"]`, "Bayside Medical Center (bayside)")
	p.shot("patient-access-live")

	revokeOtherRefused(t, p)
	revokeInPage(t, p)
	status, body := read()
	if status != http.StatusForbidden || !strings.Contains(body, `"code":"revoked"`) {
		t.Fatalf("bayside's read after the revocation: %d %s, want 403 revoked", status, body)
	}
	waitWithinBlock(t, p, ada, `#activity li[data-kind="access-denied"]`, "the consent was revoked")
	stale.click(`#consents li.consent:not(.revoked) button`)
	stale.wait(`document.getElementById("alert").textContent === "This consent is already revoked."`, 10*time.Second)

	// Ada's privacy officer signs in to an empty review queue. An emergency access
	// appears in it live, within a block, and apart on the patient's page; the
	// officer reviews it.
	o := b.newTab(false)
	officerSignIn(t, o, ada.APIURL(), adaTokens["privacy-officer"])
	breakGlass := func() {
		status, body := apiCall(t, "POST", bayside.APIURL()+"/records/"+string(rec.ID)+"/$emergency-access?reason=life-threatening", bayTokens["clinician"])
		if status != http.StatusOK {
			t.Fatalf("bayside's emergency access: %d %s", status, body)
		}
	}
	breakGlass()
	waitWithinBlock(t, o, ada, "#queue li.unreviewed", "Bayside Medical Center (bayside) broke the glass")
	p.wait(`[...document.querySelectorAll("#emergencies li.unreviewed")].some(li => li.textContent.includes("Bayside Medical Center (bayside)") && li.textContent.includes("awaiting review"))`, 10*time.Second)
	p.shot("patient-emergency")
	reviewInOfficerPage(t, o, breakGlass)
	p.wait(`[...document.querySelectorAll("#emergencies li.reviewed")].some(li => li.textContent.includes("reviewed: justified"))`, 10*time.Second)

	// The page's accounting is the API's, in both formats.
	accountingAPI := func(format string) string {
		status, body := apiCall(t, "GET", ada.APIURL()+"/audit/accounting?format="+format+"&patient="+string(patient), adaTokens["privacy-officer"])
		if status != http.StatusOK {
			t.Fatalf("the API's accounting (%s): %d %s", format, status, body)
		}
		return body
	}
	p.click("#accounting-csv")
	if got, want := download(t, b.downloads, `^accounting-of-disclosures-[0-9-]+\.csv$`), accountingAPI("csv"); string(got) != want {
		t.Errorf("the page's accounting download:\n%s\nthe API's:\n%s", got, want)
	} else if !strings.Contains(want, "Bayside Medical Center") {
		t.Errorf("the accounting names no release to Bayside:\n%s", want)
	}
	p.click("#accounting-json")
	sameReport(t, "the page's JSON accounting", download(t, b.downloads, `^accounting-of-disclosures-[0-9-]+\.json$`), accountingAPI("json"), 2)

	keyboardConsent(t, p)
	throttledInPage(t, p)

	searchInOfficerPage(t, o, patient, b.downloads, officerEvents(t, ada.APIURL(), patient, adaTokens["privacy-officer"]))
	o.fill("#acc-patient", string(patient))
	o.click("#acc-csv")
	if got, want := download(t, b.downloads, `^accounting-[0-9]{4}-[0-9-]+\.csv$`), accountingAPI("csv"); string(got) != want {
		t.Errorf("the officer's accounting download:\n%s\nthe API's:\n%s", got, want)
	}
	o.click("#acc-json")
	sameReport(t, "the officer's JSON accounting", download(t, b.downloads, `^accounting-[0-9]{4}-[0-9-]+\.json$`), accountingAPI("json"), 2)
	proofNotChecked(t, b, dunmore.APIURL(), tokens(t, net, 3)["privacy-officer"])

	// A phone-sized screen: nothing wider than the screen.
	p.do(10*time.Second, chromedp.EmulateViewport(390, 844))
	p.open(ada.APIURL() + "/app/")
	p.wait(`!document.getElementById("signed-in").hidden`, 20*time.Second)
	if w := p.eval(`document.documentElement.scrollWidth`); w != "390" {
		t.Errorf("on a 390 px screen the patient's page is %s px wide", w)
	}
	p.shot("patient-phone")

	otherPatientSeesNothing(t, b, ada.APIURL(), patient)
	restoreInPage(t, b, ada.APIURL(), patient, backup)
	labelled(t, p, "the patient's page")
	labelled(t, o, "the officer's page")

	wrongToken := "/audit-app/session:1: Failed to load resource: the server responded with a status of 401"
	revoked := "/app/api/revoke/prepare:1: Failed to load resource: the server responded with a status of 409"
	throttled := "/app/api/submit:1: Failed to load resource: the server responded with a status of 429"
	if problems := b.consoleProblems(wrongToken, revoked, throttled); len(problems) > 0 {
		t.Errorf("the console has errors or warnings:\n%s", strings.Join(problems, "\n"))
	}
}

// createKeyInPage creates a key in the patient's page, checks its backup download,
// and returns the patient ID the page signed in as.
func createKeyInPage(t *testing.T, p *tab, base string) (consent.PatientID, []byte) {
	t.Helper()
	p.open(base + "/app/")
	p.wait(`!document.getElementById("no-key").hidden`, 10*time.Second)
	p.shot("patient-no-key")
	p.fill("#create-pass", "correct horse battery")
	p.fill("#create-pass2", "correct horse battery")
	p.click("#create-key")
	p.wait(`!document.getElementById("signed-in").hidden`, 30*time.Second)
	id := consent.PatientID(p.eval(`document.getElementById("me").textContent`))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(string(id)) {
		t.Fatalf("the page signed in as %q, not a patient ID", id)
	}
	file := download(t, p.b.downloads, `^medledger-key-backup-[0-9a-f]+\.json$`)
	var backup struct {
		Format, Patient string
	}
	if err := json.Unmarshal(file, &backup); err != nil || backup.Patient != string(id) {
		t.Fatalf("backup file: %+v, %v; want one for %s", backup, err, id)
	}
	return id, file
}

// restoreInPage restores the patient's key from its backup file in another browser:
// the wrong passphrase is refused in a sentence, the right one signs the patient in
// and shows their record.
func restoreInPage(t *testing.T, b *browser, base string, patient consent.PatientID, backup []byte) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "backup.json")
	if err := os.WriteFile(file, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	r := b.newTab(true)
	r.open(base + "/app/")
	r.wait(`!document.getElementById("no-key").hidden`, 10*time.Second)
	r.upload("#restore-file", file)
	r.fill("#restore-pass", "wrong horse battery")
	r.click("#restore-key")
	r.wait(`document.getElementById("alert").textContent === "The passphrase is wrong, or the backup file is damaged."`, 30*time.Second)
	r.fill("#restore-pass", "correct horse battery")
	r.click("#restore-key")
	r.wait(`!document.getElementById("signed-in").hidden && document.querySelectorAll("#records tbody tr").length === 1`, 30*time.Second)
	if got := r.eval(`document.getElementById("me").textContent`); got != string(patient) {
		t.Errorf("restored key signed in as %s, want %s", got, patient)
	}
}

// labelled checks that every field of the page has a label.
func labelled(t *testing.T, tb *tab, page string) {
	t.Helper()
	if n := tb.eval(`[...document.querySelectorAll("input, select")].filter(i => i.labels.length === 0 && !i.getAttribute("aria-label")).map(i => i.id || i.name).join(" ")`); n != "" {
		t.Errorf("%s: fields without a label: %s", page, n)
	}
}

// grantInPage grants Bayside TREAT (the purpose checked by default) for all data,
// checking the summary shown before signing.
func grantInPage(t *testing.T, p *tab) {
	t.Helper()
	p.click(`input[name=hospital][value=bayside]`)
	p.click("#grant-review")
	p.wait(`!document.getElementById("confirm").hidden`, 10*time.Second)
	summary := p.eval(`document.getElementById("confirm-summary").textContent`)
	for _, want := range []string{"Nothing is shared unless", "Bayside Medical Center (bayside) may obtain your records, for treatment (TREAT).", "no time limit"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary before signing = %q, want it to say %q", summary, want)
		}
	}
	p.shot("patient-consent-review")
	p.click("#confirm-sign")
	p.wait(`document.getElementById("status").textContent.includes("Your consent is on the chain")`, 20*time.Second)
	p.wait(`document.querySelectorAll("#consents li.consent:not(.revoked)").length === 1`, 10*time.Second)
}

// revokeInPage revokes the patient's one consent in force.
func revokeInPage(t *testing.T, p *tab) {
	t.Helper()
	p.click(`#consents li.consent:not(.revoked) button`)
	p.wait(`!document.getElementById("confirm").hidden && document.getElementById("confirm-summary").textContent.includes("You revoke consent")`, 10*time.Second)
	p.click("#confirm-sign")
	p.wait(`document.getElementById("status").textContent.includes("Your revocation is on the chain")`, 20*time.Second)
	p.wait(`document.querySelectorAll("#consents li.consent.revoked").length === 1`, 10*time.Second)
}

// revokeOtherRefused: a node that prepares the revocation of a consent other than
// the one clicked (here the page's fetch, altered once, changes one hex digit of the
// prepared body's consent ID) is refused in a sentence; nothing is offered to sign.
func revokeOtherRefused(t *testing.T, p *tab) {
	t.Helper()
	p.eval(`(() => {
  const real = window.fetch;
  window.fetch = async (path, init) => {
    const res = await real(path, init);
    if (!String(path).includes("/app/api/revoke/prepare")) return res;
    window.fetch = real;
    const prep = await res.json();
    const id = JSON.parse(init.body).consent;
    const bytes = Uint8Array.from(atob(prep.body), (c) => c.charCodeAt(0));
    const at = String.fromCharCode(...bytes).indexOf(id);
    bytes[at] = bytes[at] === 0x30 ? 0x31 : 0x30;
    prep.body = btoa(String.fromCharCode(...bytes));
    return new Response(JSON.stringify(prep), { status: res.status, headers: res.headers });
  };
  return "altered";
})()`)
	p.click(`#consents li.consent:not(.revoked) button`)
	p.wait(`document.getElementById("alert").textContent.includes("revocation of a different consent than the one you chose")`, 10*time.Second)
	if p.eval(`document.getElementById("confirm").hidden`) != "true" {
		t.Errorf("the revocation of another consent than the one clicked was offered for signing")
	}
}

// waitWithinBlock waits for an element matching sel whose text contains text, and
// checks it appeared within one block of the moment it was awaited from (the access
// it shows was committed by then).
func waitWithinBlock(t *testing.T, p *tab, nd *node.Node, sel, text string) {
	t.Helper()
	from := nd.Chain().Height()
	expr := `[...document.querySelectorAll(` + strconv.Quote(sel) + `)].some(li => li.textContent.includes(` + strconv.Quote(text) + `))`
	deadline := time.Now().Add(20 * time.Second)
	for p.eval(expr) != "true" {
		if time.Now().After(deadline) {
			p.shot("failure")
			t.Fatalf("the page shows no %s saying %q", sel, text)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if at := nd.Chain().Height(); at > from+1 {
		t.Errorf("the page showed %q at height %d, committed by height %d: more than one block later", text, at, from)
	}
}

// officerSignIn signs the officer in with their token (a wrong one first, refused
// in a sentence) and waits for the live review queue, empty.
func officerSignIn(t *testing.T, o *tab, base, token string) {
	t.Helper()
	o.open(base + "/audit-app/")
	o.wait(`!document.getElementById("signed-out").hidden`, 10*time.Second)
	o.fill("#token", "not-a-token")
	o.click("#sign-in")
	o.wait(`document.getElementById("alert").textContent.includes("not a privacy officer's token")`, 10*time.Second)
	o.fill("#token", token)
	o.click("#sign-in")
	o.wait(`!document.getElementById("signed-in").hidden && document.getElementById("live-state").textContent.startsWith("Live")`, 10*time.Second)
	if got := o.eval(`document.getElementById("queue-count").textContent`); got != "0 emergency accesses await review." {
		t.Errorf("queue count before any emergency = %q", got)
	}
}

// reviewInOfficerPage reviews the one emergency awaiting review as justified. While
// the officer has chosen the outcome and not yet recorded it, another emergency
// arrives (another makes it) and the queue refreshes live: the item under review
// stays the same element, with the outcome chosen, and the review is recorded; the
// new one awaits review.
func reviewInOfficerPage(t *testing.T, o *tab, another func()) {
	t.Helper()
	if got := o.eval(`document.getElementById("queue-count").textContent`); got != "1 emergency access awaits review." {
		t.Errorf("queue count = %q", got)
	}
	o.shot("officer-queue")
	item := `#queue li[data-grant="` + o.eval(`document.querySelector("#queue li.unreviewed").dataset.grant`) + `"]`
	o.setValue(item+" select", "justified")
	o.eval(`document.querySelector(` + strconv.Quote(item+" select") + `).chosenBeforeRefresh = true`)
	another()
	o.wait(`document.querySelectorAll("#queue li.unreviewed").length === 2`, 20*time.Second)
	if got := o.eval(`document.getElementById("queue-count").textContent`); got != "2 emergency accesses await review." {
		t.Errorf("queue count after another emergency = %q", got)
	}
	if got := o.eval(`((s) => s.chosenBeforeRefresh === true && s.value)(document.querySelector(` + strconv.Quote(item+" select") + `))`); got != "justified" {
		t.Errorf("the queue's live refresh replaced the item being reviewed, or its outcome chosen (%s)", got)
	}
	o.click(item + " button")
	o.wait(`document.querySelectorAll("#queue li.reviewed").length === 1 && document.querySelectorAll("#queue li.unreviewed").length === 1`, 20*time.Second)
	if got := o.eval(`document.querySelector("#queue li.reviewed .outcome").textContent`); !strings.Contains(got, "Reviewed: justified by Ada General Hospital (ada)") {
		t.Errorf("reviewed emergency says %q", got)
	}
	if got := o.eval(`document.getElementById("queue-count").textContent`); got != "1 emergency access awaits review." {
		t.Errorf("queue count after the review = %q", got)
	}
}

// searchInOfficerPage searches the patient's events ten to a page, pages through
// them with "Older events" until it has all of want (the API's list, newest first),
// opens one with its leaf, and exports the search as FHIR AuditEvents.
func searchInOfficerPage(t *testing.T, o *tab, patient consent.PatientID, downloads string, want []string) {
	t.Helper()
	if len(want) <= 10 {
		t.Fatalf("the patient has %d events: too few to page through ten at a time", len(want))
	}
	o.fill("#q-patient", string(patient))
	o.setValue("#q-limit", "10")
	o.click("#search")
	rows := `document.querySelectorAll("#results tbody tr").length`
	o.wait(rows+` === 10 && !document.getElementById("older").hidden`, 10*time.Second)
	for n := 10; n < len(want); {
		o.click("#older")
		n = min(len(want), n+10)
		o.wait(rows+` === `+strconv.Itoa(n), 10*time.Second)
	}
	o.wait(`document.getElementById("older").hidden`, 10*time.Second)
	if got := o.eval(`[...document.querySelectorAll("#results tbody tr")].map(r => r.dataset.index).join(" ")`); got != strings.Join(want, " ") {
		t.Errorf("the officer's pages of events: %s\nthe API's: %s", got, strings.Join(want, " "))
	}
	if other := o.eval(`[...document.querySelectorAll("#results tbody tr code")].filter(c => c.title !== ` + strconv.Quote(string(patient)) + `).length`); other != "0" {
		t.Errorf("%s rows of the patient's search are another patient's", other)
	}
	o.click(`#results tbody tr[data-kind="access-denied"] button`)
	o.wait(`!document.getElementById("entry").hidden && document.getElementById("entry-proof").textContent.includes("Inclusion proof checked")`, 20*time.Second)
	o.shot("officer-event")
	o.click("#export")
	var bundle struct {
		ResourceType string
		Entry        []struct{ Resource struct{ ResourceType string } }
	}
	if err := json.Unmarshal(download(t, downloads, `^audit-events-[0-9-]+\.json$`), &bundle); err != nil || bundle.ResourceType != "Bundle" ||
		len(bundle.Entry) != len(want) || bundle.Entry[0].Resource.ResourceType != "AuditEvent" {
		t.Errorf("exported AuditEvents: %+v, %v; want %d", bundle, err, len(want))
	}
}

// officerEvents are the log indexes of the patient's events, newest first, as the
// API lists them.
func officerEvents(t *testing.T, base string, patient consent.PatientID, token string) []string {
	t.Helper()
	status, body := apiCall(t, "GET", base+"/audit/events?limit=500&patient="+string(patient), token)
	var page struct{ Events []consent.AuditEvent }
	if err := json.Unmarshal([]byte(body), &page); status != http.StatusOK || err != nil {
		t.Fatalf("the API's events: %d %s", status, body)
	}
	out := make([]string, len(page.Events))
	for i, e := range page.Events {
		out[i] = strconv.FormatUint(e.Index, 10)
	}
	return out
}

// sameReport checks that an accounting downloaded as JSON is the API's: the same
// patient and disclosures, made within slack seconds of each other.
func sameReport(t *testing.T, what string, got []byte, want string, slack int64) {
	t.Helper()
	var g, w auditor.Report
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("the API's JSON accounting: %v\n%s", err, want)
	}
	gt, err1 := time.Parse(time.RFC3339, g.Generated)
	wt, err2 := time.Parse(time.RFC3339, w.Generated)
	if err1 != nil || err2 != nil || g.Patient != w.Patient || len(w.Disclosures) == 0 || !reflect.DeepEqual(g.Disclosures, w.Disclosures) ||
		gt.Sub(wt).Abs() > time.Duration(slack)*time.Second {
		t.Errorf("%s:\n%s\nthe API's:\n%s", what, got, want)
	}
}

// keyboardConsent gives City Children's Hospital a consent for treatment and then
// revokes it with the keyboard alone: Tab through the grant form, Space to tick,
// Enter to review and to sign. Every field, button and choice reached on the way
// shows the focus outline.
func keyboardConsent(t *testing.T, p *tab) {
	t.Helper()
	var reached []focusState
	reached = append(reached, p.tabTo(`input[name=hospital][value=city]`, 60)...)
	p.press(" ")
	reached = append(reached, p.tabTo("#grant-review", 40)...)
	p.press(kb.Enter)
	p.wait(`!document.getElementById("confirm").hidden && document.activeElement.id === "confirm"`, 10*time.Second)
	if s := p.eval(`document.getElementById("confirm-summary").textContent`); !strings.Contains(s, "City Children's Hospital (city) may obtain your records, for treatment (TREAT).") {
		t.Errorf("the summary of the consent given by keyboard = %q", s)
	}
	reached = append(reached, p.tabTo("#confirm-sign", 2)...)
	p.press(kb.Enter)
	p.wait(`document.getElementById("status").textContent.includes("Your consent is on the chain")`, 20*time.Second)
	p.wait(`[...document.querySelectorAll("#consents li.consent:not(.revoked)")].some(li => li.textContent.includes("City Children's Hospital (city)"))`, 10*time.Second)

	reached = append(reached, p.tabTo(`#consents li.consent:not(.revoked) button`, 60)...)
	p.press(kb.Enter)
	p.wait(`!document.getElementById("confirm").hidden && document.activeElement.id === "confirm"`, 10*time.Second)
	reached = append(reached, p.tabTo("#confirm-sign", 2)...)
	p.press(kb.Enter)
	p.wait(`document.getElementById("status").textContent.includes("Your revocation is on the chain")`, 20*time.Second)
	p.wait(`document.querySelectorAll("#consents li.consent:not(.revoked)").length === 0`, 10*time.Second)

	for _, f := range reached {
		if f.Name == "body" { // Tab left the page for the browser's own controls, and came back
			continue
		}
		if f.Outline == "none" || f.Width < 2 {
			t.Errorf("%s, focused by Tab, shows no focus outline (focus-visible %v, outline %s %.0f px)", f.Name, f.Visible, f.Outline, f.Width)
		}
	}
}

// throttledInPage: the patient's fifth consent change at Ada, which allows four at
// once (the API's per-patient limit), is refused in a sentence and changes nothing.
func throttledInPage(t *testing.T, p *tab) {
	t.Helper()
	before := p.eval(`document.querySelectorAll("#consents li.consent").length`)
	p.click(`input[name=hospital][value=dunmore]`)
	p.click("#grant-review")
	p.wait(`!document.getElementById("confirm").hidden`, 10*time.Second)
	p.click("#confirm-sign")
	p.wait(`document.getElementById("alert").textContent !== ""`, 10*time.Second)
	alert := p.eval(`document.getElementById("alert").textContent`)
	if !regexp.MustCompile(`^Too many consent changes for this patient; try again in [0-9]+ s\.$`).MatchString(alert) {
		t.Errorf("a change over the patient's limit says %q", alert)
	}
	p.click("#confirm-cancel")
	p.open(p.eval(`location.href`))
	p.wait(`document.getElementById("status").textContent === "Signed in."`, 20*time.Second) // said once all is loaded
	if after := p.eval(`document.querySelectorAll("#consents li.consent").length`); after != before {
		t.Errorf("a refused change changed the consents: %s, then %s", before, after)
	}
}

// proofNotChecked: on Dunmore, whose chain RPC is off, the officer opens an event and
// the page says its inclusion proof was not checked, and why.
func proofNotChecked(t *testing.T, b *browser, base, token string) {
	t.Helper()
	d := b.newTab(true)
	d.open(base + "/audit-app/")
	d.wait(`!document.getElementById("signed-out").hidden`, 10*time.Second)
	d.fill("#token", token)
	d.click("#sign-in")
	d.wait(`document.querySelectorAll("#results tbody tr[data-kind='access-denied']").length > 0`, 10*time.Second)
	d.click(`#results tbody tr[data-kind="access-denied"] button`)
	d.wait(`!document.getElementById("entry").hidden && document.getElementById("entry-proof").textContent !== ""`, 20*time.Second)
	want := "The inclusion proof was not checked: this node's chain RPC is off (chain.rpc_listen), so it cannot fetch the proof."
	if got := d.eval(`document.getElementById("entry-proof").textContent`); got != want {
		t.Errorf("an event opened where the proof cannot be checked says %q, want %q", got, want)
	}
	if got := d.eval(`document.querySelectorAll("#entry-proof .verified").length`); got != "0" {
		t.Errorf("an unchecked proof is marked verified")
	}
	d.shot("officer-proof-not-checked")
}

// otherPatientSeesNothing imports, in another browser, a key made as `medledger
// patient keygen` makes it, and checks the page signs in as that key's patient and
// shows none of the first patient's records, consents or accesses.
func otherPatientSeesNothing(t *testing.T, b *browser, base string, first consent.PatientID) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "key")
	k, err := crypto.CreatePatientKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	q := b.newTab(true)
	q.open(base + "/app/")
	q.wait(`!document.getElementById("no-key").hidden`, 10*time.Second)
	q.upload("#import-files", filepath.Join(dir, crypto.KEKFile), filepath.Join(dir, "patient.keyset.json"))
	q.click("#import-key")
	q.wait(`!document.getElementById("signed-in").hidden && document.getElementById("live-state").textContent === "Live."`, 30*time.Second)
	if got, want := q.eval(`document.getElementById("me").textContent`), string(consent.PatientIDOf(k.Public())); got != want {
		t.Fatalf("imported keygen key signed in as %s, want %s", got, want)
	}
	html := q.eval(`document.body.innerText`)
	if strings.Contains(html, string(first)) || strings.Contains(html, "Bayside Medical Center (bayside) broke the glass") {
		t.Errorf("another patient's page shows the first patient's data:\n%s", html)
	}
	for sel, want := range map[string]string{"#records tbody tr": "0", "#consents li": "0", "#activity li": "0", "#emergencies li": "0"} {
		if got := q.eval(`document.querySelectorAll("` + sel + `").length`); got != want {
			t.Errorf("another patient's page has %s %s, want %s", got, sel, want)
		}
	}
	q.shot("patient-imported-key")
}

// tokens reads hospital i's API tokens by role.
func tokens(t *testing.T, net *nodetest.Consortium, i int) map[string]string {
	t.Helper()
	tok, err := node.ReadTokens(net.Homes[i])
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// apiCall calls the node's API with a bearer token: status and body.
func apiCall(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(nodetest.Ctx(t), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
