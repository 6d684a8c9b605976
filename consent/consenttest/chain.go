package consenttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/medledger/medledger/consent"
)

// Chain is a consent chain in memory for tests of what drives one (the HTTP API's
// fake node): the real consent.Machine over a MemStore, each submitted tx applied
// through CheckTx, DeliverTx and EndBlock in a block of its own, at a block time the
// test sets. It decides nothing itself, so it cannot drift from the chain: a tx is
// accepted or refused, with the chain's code, by the Machine, and every read is the
// Machine's Query or a consent typed read of its state. Safe for concurrent use.
type Chain struct {
	mu      sync.Mutex
	m       *consent.Machine
	st      *MemStore
	chainID string
	height  consent.Height
	next    time.Time // the next block's time
	b       Builder
	subs    map[*follower]struct{}
}

// BlockInterval is how far the block time moves on after each block unless the test
// sets it (SetTime).
const BlockInterval = time.Second

// TxTTL is how many blocks ahead NewBody sets a tx's expiry (as a node does).
const TxTTL = 100

// ErrNotFound is a read of something the chain does not hold.
var ErrNotFound = errors.New("consenttest: not found")

// NewChain starts a chain chainID whose genesis registers hospitals (made with
// Hospital, so their operator keys are NewKey(id)); its first block is at start.
func NewChain(chainID string, hospitals []consent.Hospital, start time.Time) (*Chain, error) {
	app, err := json.Marshal(consent.Genesis{Hospitals: hospitals})
	if err != nil {
		return nil, err
	}
	c := &Chain{m: consent.NewMachine(), st: NewMemStore(), chainID: chainID, next: start,
		b: Builder{ChainID: chainID}, subs: map[*follower]struct{}{}}
	if err := c.m.InitChain(c.st, chainID, app, consent.Block{Time: start}); err != nil {
		return nil, err
	}
	return c, nil
}

// ChainID is the chain's ID.
func (c *Chain) ChainID() string { return c.chainID }

// Height is the last committed height.
func (c *Chain) Height() consent.Height {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.height
}

// SetTime sets the next block's time; it must not be before the last block's.
func (c *Chain) SetTime(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next = t
}

// Time is the next block's time.
func (c *Chain) Time() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

// NewBody is a body for this chain with a random nonce and an expiry TxTTL blocks
// ahead, for a tx signed elsewhere.
func (c *Chain) NewBody() (consent.Body, error) {
	return consent.NewBody(c.chainID, c.Height()+TxTTL)
}

// Sign signs body (its ChainID, Nonce and Expiry filled in when zero: a counter nonce
// and an expiry TxTTL blocks ahead) with signer.
func (c *Chain) Sign(body consent.Body, signer consent.Signer) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if body.Expiry == 0 {
		body.Expiry = c.height + TxTTL
	}
	return c.b.Tx(body, signer)
}

// Submit applies tx in a block of its own and returns its ID and height. A tx the
// chain refuses — at CheckTx, against committed state, or at DeliverTx — is a
// *consent.Rejection with the chain's code and log, and changes nothing (a refusal
// at DeliverTx still makes its block, as on the chain).
func (c *Chain) Submit(tx []byte) (consent.TxID, consent.Height, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, err := c.m.CheckTx(c.st, tx)
	if err != nil {
		return "", 0, err
	}
	if res.Code != consent.OK {
		return "", 0, &consent.Rejection{Code: res.Code, Log: res.Log}
	}
	size, err := c.logSize()
	if err != nil {
		return "", 0, err
	}
	if res, err = c.block(tx); err != nil {
		return "", 0, err
	}
	if res.Code != consent.OK {
		return "", 0, &consent.Rejection{Code: res.Code, Log: res.Log}
	}
	c.publish(size)
	return consent.IDOf(tx), c.height, nil
}

// block commits a block holding tx (its lock held).
func (c *Chain) block(tx []byte) (consent.Result, error) {
	b := consent.Block{Height: c.height + 1, Time: c.next}
	res, err := c.m.DeliverTx(c.st, tx, b)
	if err != nil {
		return res, err
	}
	if err := c.m.EndBlock(c.st, b); err != nil {
		return res, err
	}
	c.height, c.next = b.Height, c.next.Add(BlockInterval)
	return res, nil
}

// As signs body (Kind and payload set) with hospital h's operator key (NewKey(h))
// and submits it.
func (c *Chain) As(h consent.HospitalID, body consent.Body) (consent.TxID, consent.Height, error) {
	return c.Submit(c.Sign(body, NewKey(string(h))))
}

// Register registers a new record of patient with classes, held by custodian, and
// returns it as committed.
func (c *Chain) Register(custodian consent.HospitalID, patient consent.PatientID, classes []consent.DataClass) (*consent.Record, error) {
	id := make([]byte, 16)
	rand.Read(id)
	rr := consent.RegisterRecord{Record: consent.RecordID(hex.EncodeToString(id)), CID: TestCID, Patient: patient,
		Classes: classes, Custodians: []consent.HospitalID{custodian}}
	return c.RegisterRecord(custodian, rr)
}

// TestCID is the CID Register gives its records (the chain holds no ciphertext).
const TestCID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"

// RegisterRecord submits rr signed by hospital h and returns the record as committed.
func (c *Chain) RegisterRecord(h consent.HospitalID, rr consent.RegisterRecord) (*consent.Record, error) {
	if _, _, err := c.As(h, consent.Body{Kind: consent.KindRegisterRecord, RegisterRecord: &rr}); err != nil {
		return nil, err
	}
	return c.Record(rr.Record)
}

// Grant submits patient's consent with policy and returns its ID.
func (c *Chain) Grant(patient *Key, p consent.Policy) (consent.ConsentID, error) {
	id, _, err := c.Submit(c.Sign(consent.Body{Kind: consent.KindGrant,
		Grant: &consent.Grant{Patient: patient.Patient(), Policy: p}}, patient))
	return consent.ConsentID(id), err
}

// Revoke submits patient's revocation of consent id.
func (c *Chain) Revoke(patient *Key, id consent.ConsentID) error {
	_, _, err := c.Submit(c.Sign(consent.Body{Kind: consent.KindRevoke, Revoke: &consent.Revoke{Consent: id}}, patient))
	return err
}

// Request submits hospital h's request for record for purpose and returns the
// chain's decision (granted or not).
func (c *Chain) Request(h consent.HospitalID, record consent.RecordID, purpose consent.Purpose) (*consent.Decision, error) {
	return c.decide(h, consent.Body{Kind: consent.KindRequest,
		Request: &consent.Request{Requester: h, Record: record, Purpose: purpose}})
}

// Emergency submits hospital h's break-glass access to record with reason and returns
// the chain's decision.
func (c *Chain) Emergency(h consent.HospitalID, record consent.RecordID, reason string) (*consent.Decision, error) {
	return c.decide(h, consent.Body{Kind: consent.KindEmergency,
		Emergency: &consent.Emergency{Requester: h, Record: record, Reason: reason}})
}

func (c *Chain) decide(h consent.HospitalID, body consent.Body) (*consent.Decision, error) {
	id, _, err := c.As(h, body)
	if err != nil {
		return nil, err
	}
	return c.Decision(consent.GrantID(id))
}

// Release submits custodian's key-release receipt for grant.
func (c *Chain) Release(custodian consent.HospitalID, grant consent.GrantID) error {
	_, _, err := c.As(custodian, consent.Body{Kind: consent.KindReceipt,
		Receipt: &consent.Receipt{Custodian: custodian, Grant: grant}})
	return err
}

// Review submits hospital h's review of emergency access grant with outcome.
func (c *Chain) Review(h consent.HospitalID, grant consent.GrantID, outcome string) (consent.TxID, consent.Height, error) {
	return c.As(h, consent.Body{Kind: consent.KindReview, Review: &consent.Review{Grant: grant, Outcome: outcome}})
}

// query reads path through the Machine's Query into v; a missing item is ErrNotFound,
// any other refusal a *consent.Rejection.
func (c *Chain) query(path string, v any) error {
	c.mu.Lock()
	res, err := c.m.Query(c.st, path, nil)
	c.mu.Unlock()
	switch {
	case err != nil:
		return err
	case res.Code == consent.CodeNotFound:
		return fmt.Errorf("%w: %s", ErrNotFound, res.Log)
	case res.Code != consent.OK:
		return &consent.Rejection{Code: res.Code, Log: res.Log}
	}
	return json.Unmarshal(res.Value, v)
}

// Record is one record (ErrNotFound if none).
func (c *Chain) Record(id consent.RecordID) (*consent.Record, error) {
	var rec consent.Record
	return &rec, c.query("/record/"+string(id), &rec)
}

// Records lists a patient's records (none: empty).
func (c *Chain) Records(p consent.PatientID) ([]consent.Record, error) {
	var recs []consent.Record
	if err := c.query("/records/"+string(p), &recs); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return recs, nil
}

// Consent is one consent (ErrNotFound if none).
func (c *Chain) Consent(id consent.ConsentID) (*consent.Consent, error) {
	var cs consent.Consent
	return &cs, c.query("/consent/"+string(id), &cs)
}

// Decision is one access decision (ErrNotFound if none).
func (c *Chain) Decision(id consent.GrantID) (*consent.Decision, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := consent.GetDecision(c.st, id)
	var rej *consent.Rejection
	if errors.As(err, &rej) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, rej.Log)
	}
	return d, err
}

// Consents lists a patient's consents in consent ID order.
func (c *Chain) Consents(p consent.PatientID) ([]consent.Consent, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return consent.Consents(c.st, p)
}

// Hospitals is the registry, sorted by ID.
func (c *Chain) Hospitals() ([]consent.Hospital, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return consent.Hospitals(c.st)
}

// AuditEvents is a page of the access log (consent.AuditEvents).
func (c *Chain) AuditEvents(f consent.AuditFilter) (*consent.AuditPage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return consent.AuditEvents(c.st, f)
}

// EmergencyQueue is the review queue (consent.EmergencyQueue).
func (c *Chain) EmergencyQueue() ([]consent.EmergencyCase, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return consent.EmergencyQueue(c.st)
}

// logSize is the access log's size now (its lock held).
func (c *Chain) logSize() (uint64, error) {
	head, err := consent.LogHead(c.st)
	return head.Size, err
}

// follower is one Follow subscription: the events matching its filter, queued in log
// order until its goroutine hands them on.
type follower struct {
	f      consent.AuditFilter
	mu     sync.Mutex
	queue  []consent.AuditEvent
	wake   chan struct{} // cap 1: something was queued
	closed chan struct{} // Stop closed it
}

// Follow delivers, in log order, the events matching f (its Before and Limit are
// ignored) committed from the next block on, until ctx ends or Stop; then the
// channel is closed. Which events match is the chain's rule: they are read back from
// the log with consent.EventsSince after each block. A filter the chain refuses is
// its *consent.Rejection.
func (c *Chain) Follow(ctx context.Context, f consent.AuditFilter) (<-chan consent.AuditEvent, error) {
	f.Before, f.Limit = 0, 0
	fl := &follower{f: f, wake: make(chan struct{}, 1), closed: make(chan struct{})}
	c.mu.Lock()
	_, err := consent.AuditEvents(c.st, consent.AuditFilter{Patient: f.Patient, Hospital: f.Hospital, Kind: f.Kind,
		From: f.From, To: f.To, Limit: 1})
	if err == nil {
		c.subs[fl] = struct{}{}
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make(chan consent.AuditEvent)
	go func() {
		defer close(out)
		defer func() {
			c.mu.Lock()
			delete(c.subs, fl)
			c.mu.Unlock()
		}()
		for {
			for _, e := range fl.take() {
				select {
				case out <- e:
				case <-ctx.Done():
					return
				case <-fl.closed:
					return
				}
			}
			select {
			case <-fl.wake:
			case <-ctx.Done():
				return
			case <-fl.closed:
				return
			}
		}
	}()
	return out, nil
}

func (fl *follower) take() []consent.AuditEvent {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	q := fl.queue
	fl.queue = nil
	return q
}

// Following is the number of Follow subscriptions not ended yet.
func (c *Chain) Following() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs)
}

// Stop ends every Follow subscription, as a node that stops.
func (c *Chain) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for fl := range c.subs {
		select {
		case <-fl.closed:
		default:
			close(fl.closed)
		}
	}
}

// publish queues, for each follower, the events the last block appended to the log
// from index from on that match its filter (its lock held). A log that cannot be read
// is a broken store: it panics, as a node would halt.
func (c *Chain) publish(from uint64) {
	size, err := c.logSize()
	if err != nil {
		panic(err)
	}
	page := func(f consent.AuditFilter) (*consent.AuditPage, error) { return consent.AuditEvents(c.st, f) }
	for fl := range c.subs {
		es, err := consent.EventsSince(from, size, fl.f, page)
		if err != nil {
			panic(err)
		}
		if len(es) == 0 {
			continue
		}
		fl.mu.Lock()
		fl.queue = append(fl.queue, es...)
		fl.mu.Unlock()
		select {
		case fl.wake <- struct{}{}:
		default:
		}
	}
}

// Erase submits patient's erasure of record.
func (c *Chain) Erase(patient *Key, record consent.RecordID) error {
	_, _, err := c.Submit(c.Sign(consent.Body{Kind: consent.KindErase, Erase: &consent.Erase{Record: record}}, patient))
	return err
}
