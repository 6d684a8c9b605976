package chain

import (
	"context"
	"errors"
	"fmt"
	"sync"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/mempool"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/medledger/medledger/consent"
)

// SubmitTx puts tx in the local mempool (CheckTx against committed state, then gossip)
// and waits until it is committed in a block. A tx the state machine rejects is not an
// error: check.Code != 0, height 0. err is the mempool's refusal (full, duplicate, too
// large), the node stopping, ctx's error, *NoProgress when the chain made no block
// for StallAfter (the tx stays in the mempool and may still commit), or *TxDropped when
// the tx left the mempool uncommitted (it will not commit): a tx that can no longer
// commit keeps no caller waiting, whatever ctx allows.
func (n *Node) SubmitTx(ctx context.Context, tx []byte) (check consent.Result, height int64, deliver consent.Result, err error) {
	// Wait for the commit before CheckTx: the block may come right after it.
	committed, cancel := n.commits.Wait(tx)
	defer cancel()

	checked := make(chan *abcitypes.ResponseCheckTx, 1)
	err = n.cmt.Mempool().CheckTx(tx, func(r *abcitypes.ResponseCheckTx) {
		select {
		case checked <- r:
		default:
		}
	}, mempool.TxInfo{})
	if err != nil {
		return consent.Result{}, 0, consent.Result{}, fmt.Errorf("chain: submit: %w", err)
	}
	select {
	case <-ctx.Done():
		return consent.Result{}, 0, consent.Result{}, ctx.Err()
	case r := <-checked:
		check = consent.Result{Code: consent.Code(r.Code), Log: r.Log, Value: r.Data}
	}
	if check.Code != consent.OK {
		return check, 0, consent.Result{}, nil
	}
	stall := n.watchProgress(tx)
	defer stall.stop()
	select {
	case <-ctx.Done():
		return check, 0, consent.Result{}, ctx.Err()
	case err := <-stall.c: // *NoProgress or *TxDropped
		select {
		case ev, ok := <-committed: // it came all the same (both were ready: select picks either)
			if ok {
				return check, ev.Height, execResult(&ev.Result), nil
			}
		default:
		}
		return check, 0, consent.Result{}, err
	case ev, ok := <-committed:
		if !ok {
			return check, 0, consent.Result{}, errors.New("chain: submit: the node stopped before the tx was committed")
		}
		return check, ev.Height, execResult(&ev.Result), nil
	}
}

// CommitWaiters tells SubmitTx callers when their txs are committed. It holds one
// event-bus subscription to every committed tx and dispatches by tx hash: the event
// bus matches each event against each subscription's query, so a subscription per
// waiting tx costs O(waiting txs) per committed tx.
type CommitWaiters struct {
	mu      sync.Mutex
	waiting map[string][]chan cmttypes.EventDataTx // by tx hash
	done    bool                                   // the subscription ended
}

// WatchCommits subscribes to bus and dispatches its tx events until bus stops.
func WatchCommits(bus *cmttypes.EventBus) (*CommitWaiters, error) {
	// Unbuffered: the bus waits for the dispatcher (which never blocks) instead of
	// dropping the subscription when a large block's events arrive at once.
	sub, err := bus.SubscribeUnbuffered(context.Background(), "chain.SubmitTx", cmttypes.EventQueryTx)
	if err != nil {
		return nil, fmt.Errorf("chain: subscribe to committed txs: %w", err)
	}
	w := &CommitWaiters{waiting: map[string][]chan cmttypes.EventDataTx{}}
	go w.dispatch(sub)
	return w, nil
}

func (w *CommitWaiters) dispatch(sub cmttypes.Subscription) {
	defer w.close()
	for {
		select {
		case <-sub.Canceled():
			return
		case msg := <-sub.Out():
			ev, ok := msg.Data().(cmttypes.EventDataTx)
			if !ok {
				continue
			}
			key := string(cmttypes.Tx(ev.Tx).Hash())
			w.mu.Lock()
			for _, c := range w.waiting[key] {
				c <- ev // buffered for one event; removed from waiting below
			}
			delete(w.waiting, key)
			w.mu.Unlock()
		}
	}
}

// close ends every wait: the node stopped.
func (w *CommitWaiters) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	for _, cs := range w.waiting {
		for _, c := range cs {
			close(c)
		}
	}
	clear(w.waiting)
}

// Wait returns a channel that receives tx's commit event (or is closed when the node
// stops first), and a function to call when the caller no longer waits.
func (w *CommitWaiters) Wait(tx []byte) (<-chan cmttypes.EventDataTx, func()) {
	key := string(cmttypes.Tx(tx).Hash())
	c := make(chan cmttypes.EventDataTx, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		close(c)
		return c, func() {}
	}
	w.waiting[key] = append(w.waiting[key], c)
	return c, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		cs := w.waiting[key]
		for i, other := range cs {
			if other == c {
				cs = append(cs[:i], cs[i+1:]...)
				break
			}
		}
		if len(cs) == 0 {
			delete(w.waiting, key)
		} else {
			w.waiting[key] = cs
		}
	}
}
