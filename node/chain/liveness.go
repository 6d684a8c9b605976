package chain

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	gogotypes "github.com/cosmos/gogoproto/types"
)

// Peer liveness: CometBFT v0.40 notices a peer whose host died without closing its
// connections (power loss, a partition, a frozen process: no FIN, no RST) only by its
// connection's ping (every 60 s) and pong timeout (45 s), neither configurable; and a
// connection whose writes block on the dead peer's full window does not even see the
// pong timeout until the kernel gives up on it. Meanwhile its switch holds the dead
// connection and refuses the restarted node's new one as a duplicate peer (same node
// ID), so a validator restarted after such a death could not rejoin for minutes. The
// liveness reactor bounds that: each node sends a tiny heartbeat to each peer every
// second on its own channel, and drops a peer that advertises the channel but has sent
// nothing for Config.PeerSilence. A persistent peer is redialled at once and every
// 5-8 s after (CometBFT's reconnect loop).
//
// The reactor also keeps dialling its persistent peers: every keepDialInterval it
// dials each one that is neither connected nor being dialled. CometBFT's own reconnect
// loop can end while the peer is still away: when a peer accepts the connection and
// drops it at once (as a peer holding a stale connection of ours does, refusing the
// duplicate), the loop that made the connection ends with success, and the new loop the
// drop starts quits because the old one is still marked as running (seen: all three
// loops of a restarted validator gone within 2 s). After ~2 minutes of failures the
// loop also backs off exponentially (3^i s), so a peer down for long is redialled only
// every many minutes. Either way the restarted node could wait for minutes.
//
// Dropping a connection never costs safety: consensus tolerates lost messages, and the
// peers reconnect. A peer that does not advertise the channel (an older binary, or a
// node with NoPeerLiveness) is neither sent heartbeats nor judged.

// DefaultPeerSilence is Config.PeerSilence when it is 0.
const DefaultPeerSilence = 8 * time.Second

// MinPeerSilence is the least Config.PeerSilence: several heartbeats must be missed
// before a peer is judged dead.
const MinPeerSilence = 3 * time.Second

// NoPeerLiveness as Config.PeerSilence turns the liveness heartbeat off: the node
// neither sends it nor advertises its channel, and keeps silent peers until
// CometBFT's own ping/pong drops them. It still keeps dialling its persistent peers.
const NoPeerLiveness time.Duration = -1

// ErrPeerSilent is why the liveness reactor stopped a peer: it sent nothing (no
// heartbeat) for Config.PeerSilence.
var ErrPeerSilent = errors.New("chain: peer silent (no liveness heartbeat)")

const (
	// livenessChannel is the heartbeat's p2p channel. CometBFT v0.40 uses 0x00 (PEX),
	// 0x20-0x23 (consensus), 0x30 (mempool), 0x38 (evidence), 0x40 (block sync) and
	// 0x60-0x61 (state sync).
	livenessChannel = byte(0x70)
	// livenessReactorName is the reactor's name in the p2p switch.
	livenessReactorName = "MEDLEDGER_LIVENESS"
	// heartbeatInterval is how often a heartbeat goes to each peer.
	heartbeatInterval = time.Second
	// stallGap: a tick later than this after the previous one means this process did
	// not run meanwhile (stopped, starved), so it read nothing from anyone; every
	// peer's clock restarts instead of judging peers by the gap.
	stallGap = 3 * heartbeatInterval
	// allSilentFactor: when no peer at all was heard within PeerSilence, the silence
	// is more likely this node's own (its receive routines block while its consensus
	// routine is stuck) than every peer's at once, so peers are dropped only after
	// allSilentFactor × PeerSilence.
	allSilentFactor = 3
	// keepDialInterval is how often a persistent peer that is neither connected nor
	// being dialled is dialled.
	keepDialInterval = 3 * time.Second
)

// livenessReactors is the reactor to add to CometBFT's switch, for Config.PeerSilence
// silence (after Validate) and the node's persistent peers ("id@host:port"; those
// that do not parse are left to CometBFT, which reports them).
func livenessReactors(silence time.Duration, persistentPeers []string, logger cmtlog.Logger) map[string]p2p.Reactor {
	r := newLivenessReactor(silence)
	r.persistent, _ = p2p.NewNetAddressStrings(persistentPeers)
	r.SetLogger(logger.With("module", "liveness"))
	return map[string]p2p.Reactor{livenessReactorName: r}
}

// livenessReactor sends heartbeats, stops peers that send none and keeps dialling
// persistent peers; see the comment above DefaultPeerSilence.
type livenessReactor struct {
	p2p.BaseReactor
	silence time.Duration // NoPeerLiveness: no heartbeat
	now     func() time.Time
	// stopPeer stops a silent peer; nil means the switch's StopPeerForError, which
	// redials a persistent peer.
	stopPeer   func(p2p.Peer, any)
	persistent []*p2p.NetAddress

	mu       sync.Mutex
	peers    map[p2p.ID]*peerClock // the peers that advertise livenessChannel
	lastTick time.Time
	lastDial time.Time
	seq      uint64

	quit chan struct{} // closed by OnStop
	done chan struct{} // closed when the heartbeat routine has returned
}

// peerClock is when a peer's connection was last heard on livenessChannel (or added).
type peerClock struct {
	peer  p2p.Peer
	heard time.Time
}

func newLivenessReactor(silence time.Duration) *livenessReactor {
	r := &livenessReactor{
		silence: silence,
		now:     time.Now,
		peers:   map[p2p.ID]*peerClock{},
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	r.BaseReactor = *p2p.NewBaseReactor("Liveness", r)
	return r
}

// GetChannels implements p2p.Reactor: one small, low-volume channel (none without the
// heartbeat). Its traffic is so small that the connection's scheduler (least recently
// sent per priority) sends a heartbeat ahead of bulk traffic.
func (r *livenessReactor) GetChannels() []*p2p.ChannelDescriptor {
	if r.silence == NoPeerLiveness {
		return nil
	}
	return []*p2p.ChannelDescriptor{{
		ID:                  livenessChannel,
		Priority:            1,
		SendQueueCapacity:   2,
		RecvBufferCapacity:  16,
		RecvMessageCapacity: 32,
		MessageType:         &gogotypes.UInt64Value{},
	}}
}

// OnStart implements service.Service: it starts the heartbeat routine.
func (r *livenessReactor) OnStart() error {
	go r.run()
	return nil
}

// OnStop implements service.Service: it ends the heartbeat routine and waits for it.
func (r *livenessReactor) OnStop() {
	close(r.quit)
	<-r.done
}

func (r *livenessReactor) run() {
	defer close(r.done)
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-t.C:
			r.beat()
			r.keepDialling()
		}
	}
}

// beat sends every tracked peer a heartbeat and stops the silent ones.
func (r *livenessReactor) beat() {
	if r.silence == NoPeerLiveness {
		return
	}
	silent, live, seq := r.judge(r.now())
	for _, c := range silent {
		err := fmt.Errorf("%w: nothing for %v", ErrPeerSilent, c.quiet.Round(100*time.Millisecond))
		if r.stopPeer != nil {
			r.stopPeer(c.peer, err)
		} else {
			r.Switch.StopPeerForError(c.peer, err)
		}
	}
	for _, p := range live {
		r.send(p, seq)
	}
}

// silentPeer is a peer judged dead and how long it had been quiet.
type silentPeer struct {
	peer  p2p.Peer
	quiet time.Duration
}

// judge returns the tracked peers silent for too long at now (and forgets them) and
// the others, and the heartbeat's sequence number. It does no I/O: the caller stops and
// sends without holding the lock (stopping a peer calls RemovePeer).
func (r *livenessReactor) judge(now time.Time) (silent []silentPeer, live []p2p.Peer, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.lastTick.IsZero() && now.Sub(r.lastTick) > stallGap {
		for _, c := range r.peers {
			c.heard = now
		}
	}
	r.lastTick = now
	r.seq++
	var newest time.Time
	for _, c := range r.peers {
		if c.heard.After(newest) {
			newest = c.heard
		}
	}
	limit := r.silence
	if now.Sub(newest) > r.silence {
		limit = allSilentFactor * r.silence
	}
	for id, c := range r.peers {
		if quiet := now.Sub(c.heard); quiet > limit {
			silent = append(silent, silentPeer{peer: c.peer, quiet: quiet})
			delete(r.peers, id)
		} else {
			live = append(live, c.peer)
		}
	}
	return silent, live, r.seq
}

// send queues a heartbeat without blocking: a peer whose queue is full (it reads
// nothing) simply misses it.
func (*livenessReactor) send(p p2p.Peer, seq uint64) {
	p.TrySend(p2p.Envelope{ChannelID: livenessChannel, Message: &gogotypes.UInt64Value{Value: seq}})
}

// keepDialling dials, every keepDialInterval, each persistent peer that is neither
// connected nor being dialled. A failed dial starts CometBFT's reconnect loop for it
// if none runs.
func (r *livenessReactor) keepDialling() {
	sw, ok := r.Switch.(*p2p.Switch)
	if !ok || len(r.persistent) == 0 {
		return
	}
	r.mu.Lock()
	now := r.now()
	due := now.Sub(r.lastDial) >= keepDialInterval
	if due {
		r.lastDial = now
	}
	r.mu.Unlock()
	if !due {
		return
	}
	for _, addr := range r.persistent {
		if sw.IsDialingOrExistingAddress(addr) {
			continue
		}
		go func() {
			select {
			case <-r.quit:
				return
			default:
			}
			if err := sw.DialPeerWithAddress(addr); err != nil {
				r.Logger.Debug("Dialling a persistent peer", "addr", addr, "err", err)
			}
		}()
	}
}

// AddPeer implements p2p.Reactor: a peer that advertises the channel is tracked from
// now and sent a first heartbeat.
func (r *livenessReactor) AddPeer(p p2p.Peer) {
	if r.silence == NoPeerLiveness || !advertises(p, livenessChannel) {
		return
	}
	r.mu.Lock()
	r.peers[p.ID()] = &peerClock{peer: p, heard: r.now()}
	seq := r.seq
	r.mu.Unlock()
	r.send(p, seq)
}

// RemovePeer implements p2p.Reactor. It forgets the peer only if it is the connection
// tracked under its ID, not a newer one of the same node.
func (r *livenessReactor) RemovePeer(p p2p.Peer, _ any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.peers[p.ID()]; ok && c.peer == p {
		delete(r.peers, p.ID())
	}
}

// Receive implements p2p.Reactor: any message on the channel is a heartbeat.
func (r *livenessReactor) Receive(e p2p.Envelope) {
	if e.Src == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.peers[e.Src.ID()]; ok && c.peer == e.Src {
		c.heard = r.now()
	}
}

// advertises reports whether p's node info lists channel ch.
func advertises(p p2p.Peer, ch byte) bool {
	ni, ok := p.NodeInfo().(p2p.DefaultNodeInfo)
	return ok && bytes.IndexByte(ni.Channels, ch) >= 0
}
