package node_test

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/medledger/medledger/crypto"
	"github.com/medledger/medledger/node"
	"github.com/medledger/medledger/node/home"
	"github.com/medledger/medledger/node/nodetest"
	"github.com/medledger/medledger/storage"
)

// syncLog records the syncs of DEK files and directories, in order, and can fail
// them.
type syncLog struct {
	mu     sync.Mutex
	events []string // "file DIR/NAME" or "dir DIR"
	fail   error    // returned for a directory's sync, if set
	onDir  func()   // runs at a directory's sync, before it returns
}

func (l *syncLog) sync(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	l.mu.Lock()
	kind := "file"
	if fi.IsDir() {
		kind = "dir"
	}
	l.events = append(l.events, kind+" "+f.Name())
	l.mu.Unlock()
	if !fi.IsDir() {
		return f.Sync()
	}
	if l.onDir != nil {
		l.onDir()
	}
	if l.fail != nil {
		return l.fail
	}
	return f.Sync()
}

func (l *syncLog) record(event string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, event)
}

// blocks counts the blocks in a store.
func blocks(t *testing.T, s *storage.Store) int {
	t.Helper()
	keys, err := s.Blockstore().AllKeysChan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys {
		n++
	}
	return n
}

func dekFiles(t *testing.T, h *home.Home) []string {
	t.Helper()
	ents, err := os.ReadDir(h.Path(home.DEKDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// Ingest returns only once the custody key file is synced, then its directory; a
// failed sync leaves no key file, no temporary file and no pinned block.
func TestIngestSyncsDEK(t *testing.T) {
	h, store := ingestHome(t, home.IngestConfig{})
	g := node.NewIngestGate(home.IngestConfig{})
	log := &syncLog{}
	g.SetSync(log.sync)

	in, err := g.Ingest(t.Context(), h, store, bytes.NewReader(nodetest.Sample(t)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	log.record("ingest returned")
	dir := h.Path(home.DEKDir)
	if got := log.events; len(got) != 3 || !strings.HasPrefix(got[0], "file "+dir+"/.") || got[1] != "dir "+dir {
		t.Fatalf("got %q, want the temporary key file synced, then %s, then the return", got, dir)
	}
	if _, err := os.Stat(node.CustodyKeyPath(h, in.ID)); err != nil {
		t.Fatalf("no custody key file after the ingest: %v", err)
	}

	before := blocks(t, store)
	log.fail = errors.New("disk gone")
	if _, err := g.Ingest(t.Context(), h, store, bytes.NewReader(bigBundle(t, 1)), nil, nil); !errors.Is(err, log.fail) {
		t.Fatalf("got %v, want the sync's error", err)
	}
	if got := dekFiles(t, h); len(got) != 1 || got[0] != filepath.Base(node.CustodyKeyPath(h, in.ID)) {
		t.Errorf("DEK dir holds %q after a failed sync, want only the first record's key", got)
	}
	if _, err := store.GC(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := blocks(t, store); after != before {
		t.Errorf("%d blocks before the failed ingest, %d after it and GC: it left a pin", before, after)
	}
}

// On a real node, the register tx is submitted only after the DEK file and its
// directory are synced; a failed sync submits none and keeps nothing. A full ingest
// gate is answered 503 with Retry-After.
func TestIngestDEKDurableBeforeRegister(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-hospital network")
	}
	t.Parallel()
	g := node.NewIngestGate(home.IngestConfig{MaxConcurrent: 1, MaxWait: "100ms"})
	log := &syncLog{}
	g.SetSync(log.sync)
	net := nodetest.StartConsortiumWith(t, 4, func(i int, c *node.Config) {
		if i == 0 {
			c.IngestGate = g
		}
	})
	ada, bayside := net.Nodes[0], net.Nodes[1]

	// marker commits a tx submitted through another node after the DEK's sync: a
	// register tx already submitted by then would commit no later than it.
	marker := func() {
		other, opid := nodetest.NewPatient(t)
		nodetest.AsPatient(t, bayside, other, nodetest.Permit(opid, "ada"))
		log.record("marker committed")
	}

	_, pid := nodetest.NewPatient(t)
	log.onDir = func() {
		marker()
		if recs, err := bayside.Records(t.Context(), pid); err != nil || len(recs) != 0 {
			t.Errorf("at the DEK's directory sync the chain already has %d records of the patient (%v): registered before the key was durable", len(recs), err)
		}
	}
	rec, err := ada.Ingest(nodetest.Ctx(t), pid, bytes.NewReader(nodetest.Sample(t)))
	if err != nil {
		t.Fatal(err)
	}
	log.record("registered")
	id, _ := crypto.ParseRecordID(string(rec.ID))
	dir := ada.Home().Path(home.DEKDir)
	if got := log.events; len(got) != 4 || got[1] != "dir "+dir || got[2] != "marker committed" || got[3] != "registered" {
		t.Errorf("got %q, want the key file synced, its directory, the marker, then the register tx", got)
	}
	if _, err := os.Stat(node.CustodyKeyPath(ada.Home(), id)); err != nil {
		t.Errorf("registered record %s has no custody key file: %v", rec.ID, err)
	}

	// A failed directory sync: no register tx, no key file, no pinned block.
	log.onDir, log.fail = nil, errors.New("disk gone")
	keys := dekFiles(t, ada.Home())
	before := blocks(t, ada.Store())
	_, pid2 := nodetest.NewPatient(t)
	if _, err := ada.Ingest(nodetest.Ctx(t), pid2, bytes.NewReader(bigBundle(t, 1))); !errors.Is(err, log.fail) {
		t.Fatalf("got %v, want the sync's error", err)
	}
	marker()
	if recs, err := bayside.Records(t.Context(), pid2); err != nil || len(recs) != 0 {
		t.Errorf("after a failed DEK sync the chain has %d records of the patient (%v), want none", len(recs), err)
	}
	if got := dekFiles(t, ada.Home()); strings.Join(got, ",") != strings.Join(keys, ",") {
		t.Errorf("DEK dir %q after a failed sync, want %q as before", got, keys)
	}
	if _, err := ada.Store().GC(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := blocks(t, ada.Store()); after != before {
		t.Errorf("%d blocks before the failed ingest, %d after it and GC: it left a pin", before, after)
	}

	// The gate full: the API answers 503 with Retry-After and an OperationOutcome.
	release, err := g.Hold(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	tokens, err := node.ReadTokens(net.Homes[0])
	if err != nil {
		t.Fatal(err)
	}
	sample := nodetest.Sample(t)
	req, _ := http.NewRequestWithContext(t.Context(), "POST", ada.APIURL()+"/fhir/Bundle?patient="+string(pid), bytes.NewReader(sample))
	req.Header.Set("Authorization", "Bearer "+tokens["clinician"])
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := new(bytes.Buffer)
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if secs, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusServiceUnavailable || secs < 1 ||
		!strings.Contains(body.String(), `"resourceType":"OperationOutcome"`) || !strings.Contains(body.String(), "ingest-busy") {
		t.Errorf("ingest with the gate full: %d Retry-After %q %s, want 503 with Retry-After and an OperationOutcome", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if recs, _ := bayside.Records(t.Context(), pid); len(recs) != 1 {
		t.Errorf("the patient has %d records after a refused ingest, want the 1 from before", len(recs))
	}
}
