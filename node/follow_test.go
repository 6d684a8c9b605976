package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/medledger/medledger/consent"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/nodetest"
)

// TestFollowWithinOneBlock: a patient following their accesses at one hospital sees
// each access decided at another within one block of its commit, in log order, and
// nothing about other patients.
func TestFollowWithinOneBlock(t *testing.T) {
	if testing.Short() {
		t.Skip("runs on a 4-hospital network")
	}
	t.Parallel()
	net := shared.Get(t)
	ada, bayside, city := net.Nodes[0], net.Nodes[1], net.Nodes[2]
	patient, pid := nodetest.NewPatient(t)
	_, other := nodetest.NewPatient(t)
	rec, err := ada.Ingest(nodetest.Ctx(t), pid, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	otherRec, err := ada.Ingest(nodetest.Ctx(t), other, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	followed, err := bayside.Follow(ctx, consent.AuditFilter{Patient: pid})
	if err != nil {
		t.Fatal(err)
	}
	// Stamped with bayside's height as they arrive, not when the test gets round to
	// reading them: other tests share this consortium and commit blocks meanwhile.
	events := make(chan stampedEvent, 64)
	go func() {
		defer close(events)
		for e := range followed {
			events <- stampedEvent{e, bayside.Chain().Height()}
		}
	}()
	tokens, err := node.ReadTokens(net.Homes[1])
	if err != nil {
		t.Fatal(err)
	}
	sse := openSSE(t, ctx, bayside.APIURL()+"/audit/stream?patient="+string(pid), tokens["clinician"], bayside.Chain().Height)
	expect := func(kind consent.AuditKind) consent.AuditEvent {
		t.Helper()
		select {
		case e := <-events:
			if e.Kind != kind || e.Patient != pid {
				t.Fatalf("got %s for %s, want %s", e.Kind, e.Patient, kind)
			}
			// Delivered within one block: bayside had not gone past the next height.
			if e.at > int64(e.Height)+1 {
				t.Fatalf("event of height %d delivered at height %d", e.Height, e.at)
			}
			return e.AuditEvent
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s event", kind)
		}
		return consent.AuditEvent{}
	}

	if _, err := city.Read(nodetest.Ctx(t), otherRec.ID, "TREAT"); err == nil {
		t.Fatal("read without consent")
	}
	if _, err := city.Read(nodetest.Ctx(t), rec.ID, "TREAT"); err == nil {
		t.Fatal("read without consent")
	}
	expect(consent.AuditAccessDenied) // the patient's, not the other patient's
	nodetest.AsPatient(t, ada, patient, nodetest.Permit(pid, "city"))
	expect(consent.AuditConsentGranted)
	if _, err := city.Read(nodetest.Ctx(t), rec.ID, "TREAT"); err != nil {
		t.Fatal(err)
	}
	granted := expect(consent.AuditAccessGranted)
	released := expect(consent.AuditKeyReleased)
	if released.Grant != granted.Grant || released.Recipient != "city" || released.Hospital != "ada" || released.Index <= granted.Index {
		t.Fatalf("release %+v after grant %+v", released, granted)
	}

	// The same events, in the same order, over Server-Sent Events from the API.
	for _, want := range []consent.AuditKind{consent.AuditAccessDenied, consent.AuditConsentGranted, consent.AuditAccessGranted, consent.AuditKeyReleased} {
		select {
		case e := <-sse:
			if e.Kind != want || e.Patient != pid {
				t.Fatalf("SSE sent %s for %s, want %s", e.Kind, e.Patient, want)
			}
			if e.at > int64(e.Height)+1 {
				t.Fatalf("SSE delivered an event of height %d at height %d", e.Height, e.at)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("SSE sent no %s", want)
		}
	}

	// The patient's accounting of disclosures: exactly the one release, to city.
	var acc struct {
		Disclosures []struct {
			Recipient, Custodian, Record, Grant, Purpose string
		}
	}
	status, body := apiGet(t, bayside.APIURL()+"/audit/accounting?patient="+string(pid)+"&format=json", tokens["privacy-officer"])
	if status != http.StatusOK || json.Unmarshal(body, &acc) != nil {
		t.Fatalf("accounting: %d %s", status, body)
	}
	rows := acc.Disclosures
	if len(rows) != 1 || rows[0].Recipient != "city" || rows[0].Custodian != "ada" || rows[0].Record != string(rec.ID) || rows[0].Grant != string(granted.Grant) || rows[0].Purpose != "TREAT" {
		t.Fatalf("accounting rows %+v", rows)
	}
	cancel()
	for range events {
	}
}

// stampedEvent is an event received and the height the node was at then.
type stampedEvent struct {
	consent.AuditEvent
	at int64
}

// openSSE subscribes to an SSE stream and decodes its audit events, noting height()
// as each arrives.
func openSSE(t *testing.T, ctx context.Context, url, token string, height func() int64) <-chan stampedEvent {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan stampedEvent, 64)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e consent.AuditEvent
			if json.Unmarshal([]byte(data), &e) == nil {
				out <- stampedEvent{e, height()}
			}
		}
	}()
	return out
}

func apiGet(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
