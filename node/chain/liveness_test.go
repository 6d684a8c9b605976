package chain

import (
	"crypto/ed25519"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/mock"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/medledger/medledger/node/chain/abci"
)

// fakePeer is a started mock peer that advertises channels and counts the heartbeats
// sent to it.
type fakePeer struct {
	*mock.Peer
	channels []byte
	sent     atomic.Int32
}

func newFakePeer(channels ...byte) *fakePeer {
	return &fakePeer{Peer: mock.NewPeer(nil), channels: channels}
}

func (p *fakePeer) NodeInfo() p2p.NodeInfo {
	ni := p.Peer.NodeInfo().(p2p.DefaultNodeInfo)
	ni.Channels = p.channels
	return ni
}

func (p *fakePeer) TrySend(e p2p.Envelope) bool {
	if e.ChannelID == livenessChannel {
		p.sent.Add(1)
	}
	return true
}

// livenessClock drives a liveness reactor by hand: a fake time, and the peers it
// stopped with their reasons.
type livenessClock struct {
	r       *livenessReactor
	now     time.Time
	stopped map[p2p.Peer]any
}

func newLivenessClock(t *testing.T, silence time.Duration) *livenessClock {
	t.Helper()
	c := &livenessClock{now: time.Unix(1_700_000_000, 0), stopped: map[p2p.Peer]any{}}
	c.r = newLivenessReactor(silence)
	c.r.now = func() time.Time { return c.now }
	c.r.stopPeer = func(p p2p.Peer, reason any) {
		c.stopped[p] = reason
		c.r.RemovePeer(p, reason) // as the switch does
	}
	return c
}

// run advances the clock by d in heartbeat ticks; hear is called before each tick.
func (c *livenessClock) run(d time.Duration, hear func()) {
	for end := c.now.Add(d); c.now.Before(end); {
		c.now = c.now.Add(heartbeatInterval)
		if hear != nil {
			hear()
		}
		c.r.beat()
	}
}

func (c *livenessClock) hear(p p2p.Peer) {
	c.r.Receive(p2p.Envelope{Src: p, ChannelID: livenessChannel})
}

func TestLivenessStopsOnlySilentPeersThatAdvertise(t *testing.T) {
	c := newLivenessClock(t, 8*time.Second)
	live, silent := newFakePeer(0x20, livenessChannel), newFakePeer(0x20, livenessChannel)
	old := newFakePeer(0x20, 0x21) // an older binary: no liveness channel
	for _, p := range []p2p.Peer{live, silent, old} {
		c.r.AddPeer(p)
	}
	hearLive := func() { c.hear(live) }

	c.run(8*time.Second, hearLive)
	if len(c.stopped) != 0 {
		t.Fatalf("stopped within the silence: %v", c.stopped)
	}
	c.run(2*time.Second, hearLive)
	reason, ok := c.stopped[silent]
	if !ok || len(c.stopped) != 1 {
		t.Fatalf("after 10 s: stopped %v, want only the silent peer", c.stopped)
	}
	if err, _ := reason.(error); !errors.Is(err, ErrPeerSilent) {
		t.Errorf("reason %v, want ErrPeerSilent", reason)
	}
	c.run(time.Minute, hearLive)
	if _, ok := c.stopped[old]; ok || len(c.stopped) != 1 {
		t.Errorf("after a minute: stopped %v; a peer without the channel is left alone", c.stopped)
	}
	if n := old.sent.Load(); n != 0 {
		t.Errorf("%d heartbeats sent to a peer without the channel", n)
	}
	// A heartbeat at AddPeer and one per tick.
	if n := live.sent.Load(); n < 70 {
		t.Errorf("%d heartbeats sent to the live peer in 70 s", n)
	}
}

// TestLivenessOff: with NoPeerLiveness the node sends no heartbeat and drops nobody.
func TestLivenessOff(t *testing.T) {
	c := newLivenessClock(t, NoPeerLiveness)
	p := newFakePeer(livenessChannel)
	c.r.AddPeer(p)
	c.run(time.Minute, nil)
	if len(c.stopped) != 0 || p.sent.Load() != 0 {
		t.Fatalf("liveness off: stopped %v, %d heartbeats sent", c.stopped, p.sent.Load())
	}
}

// TestLivenessAllSilentWaitsLonger: when no peer at all is heard, this node is more
// likely the one stalled; it waits 3 × the silence before dropping them.
func TestLivenessAllSilentWaitsLonger(t *testing.T) {
	c := newLivenessClock(t, 8*time.Second)
	a, b := newFakePeer(livenessChannel), newFakePeer(livenessChannel)
	c.r.AddPeer(a)
	c.r.AddPeer(b)
	c.run(20*time.Second, nil)
	if len(c.stopped) != 0 {
		t.Fatalf("all peers silent 20 s: stopped %v, want none before 24 s", c.stopped)
	}
	c.run(5*time.Second, nil)
	if len(c.stopped) != 2 {
		t.Fatalf("all peers silent 25 s: stopped %d, want 2", len(c.stopped))
	}
}

// TestLivenessPausedProcessJudgesNobody: a tick that comes late (this process was
// stopped or starved) restarts every clock instead of blaming the peers for the gap.
func TestLivenessPausedProcessJudgesNobody(t *testing.T) {
	c := newLivenessClock(t, 8*time.Second)
	a, b := newFakePeer(livenessChannel), newFakePeer(livenessChannel)
	c.r.AddPeer(a)
	c.r.AddPeer(b)
	hearBoth := func() { c.hear(a); c.hear(b) }
	c.run(3*time.Second, hearBoth)
	c.now = c.now.Add(30 * time.Second) // SIGSTOPped for 30 s
	c.run(5*time.Second, hearBoth)
	if len(c.stopped) != 0 {
		t.Fatalf("after a pause: stopped %v", c.stopped)
	}
	// Once resumed, a peer that stays silent is judged as usual.
	c.run(10*time.Second, func() { c.hear(a) })
	if _, ok := c.stopped[b]; !ok || len(c.stopped) != 1 {
		t.Fatalf("stopped %v, want b", c.stopped)
	}
}

// TestLivenessNewConnectionOfSameNode: when a node's old connection is removed after
// its new one was added (same ID), the new one stays tracked, and heartbeats on the old
// one do not count for the new one.
func TestLivenessNewConnectionOfSameNode(t *testing.T) {
	c := newLivenessClock(t, 8*time.Second)
	other := newFakePeer(livenessChannel)
	oldConn := newFakePeer(livenessChannel)
	newConn := &fakePeer{Peer: oldConn.Peer, channels: oldConn.channels} // same ID, another connection
	c.r.AddPeer(other)
	c.r.AddPeer(oldConn)
	c.r.AddPeer(newConn)
	c.r.RemovePeer(oldConn, nil)
	c.run(10*time.Second, func() { c.hear(other); c.hear(oldConn) })
	if _, ok := c.stopped[newConn]; !ok || len(c.stopped) != 1 {
		t.Fatalf("stopped %v, want the new connection, heard on neither", c.stopped)
	}
}

func TestConfigPeerSilence(t *testing.T) {
	for name, tc := range map[string]struct {
		in, want time.Duration
		ok       bool
	}{
		"default":  {0, DefaultPeerSilence, true},
		"off":      {NoPeerLiveness, NoPeerLiveness, true},
		"set":      {5 * time.Second, 5 * time.Second, true},
		"negative": {-2 * time.Second, 0, false},
		"too fast": {time.Second, 0, false},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := validConfig(t)
			cfg.PeerSilence = tc.in
			err := cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate: %v, want ok %v", err, tc.ok)
			}
			if tc.ok && cfg.PeerSilence != tc.want {
				t.Errorf("PeerSilence %v, want %v", cfg.PeerSilence, tc.want)
			}
			if !tc.ok {
				return
			}
			for _, r := range livenessReactors(cfg.PeerSilence, nil, cmtlog.NewNopLogger()) {
				if chans := r.GetChannels(); (len(chans) == 0) != (tc.in == NoPeerLiveness) {
					t.Errorf("%d liveness channels for %v", len(chans), tc.in)
				}
			}
		})
	}
}

// validConfig is a Config that Validate accepts (the node is never created).
func validConfig(t *testing.T) Config {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Home: t.TempDir(), NodeKey: key, ValidatorKey: key, Genesis: &cmttypes.GenesisDoc{},
		Machine: abci.NewConsentMachine(), P2PListen: "tcp://127.0.0.1:26656",
	}
}
