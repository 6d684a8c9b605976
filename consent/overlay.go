package consent

import (
	"bytes"
	"errors"
	"slices"
	"sort"
	"time"
)

// View is a layer of state an Overlay reads through without copying: a committed store,
// or another Overlay. A Reader that is not a View is read through its Get and Iterate.
type View interface {
	// Lookup returns key's value, which the caller must not modify, and whether the key
	// is present.
	Lookup(key []byte) (value []byte, found bool, err error)
	// Scan calls fn for each key in [start, end) in ascending byte order (end nil: no
	// bound), with buffers fn must copy to keep. fn's error ends the scan and is
	// returned unchanged. fn may write to an Overlay it scans without disturbing the
	// scan.
	Scan(start, end []byte, fn func(key, value []byte) error) error
}

// Write is one write of an Overlay: a value, or a deletion (a tombstone).
type Write struct {
	Key     string
	Value   []byte // nil when Deleted
	Deleted bool
}

// ErrEmptyKey is a write of an empty key, which no store keeps.
var ErrEmptyKey = errors.New("consent: empty key")

// Overlay holds writes in memory on top of a parent: reads see its own writes first,
// then the parent's state; iteration merges the two in key order. It buffers a tx's
// writes (applied together with Flush, or dropped) and, in the chain, a block's. An
// Overlay is used by one goroutine at a time.
type Overlay struct {
	parent View
	writes map[string]entry
	// keys are the keys of writes: keys[:nsorted] in ascending order, then the keys
	// added since, in the order they came.
	keys    []string
	nsorted int
	// err is the first write the overlay refused.
	err error
}

// entry is one write: a value, or a tombstone.
type entry struct {
	value   []byte
	deleted bool
}

var (
	_ Store = (*Overlay)(nil)
	_ View  = (*Overlay)(nil)
)

// NewOverlay returns an empty overlay on parent.
func NewOverlay(parent Reader) *Overlay {
	v, ok := parent.(View)
	if !ok {
		v = readerView{parent}
	}
	return &Overlay{parent: v, writes: map[string]entry{}}
}

// readerView reads a Reader that is not a View.
type readerView struct{ r Reader }

func (v readerView) Lookup(key []byte) ([]byte, bool, error) {
	val, err := v.r.Get(key)
	return val, val != nil, err
}

func (v readerView) Scan(start, end []byte, fn func(key, value []byte) error) error {
	return v.r.Iterate(start, end, fn)
}

// Err is the first write the overlay refused (ErrEmptyKey), nil if none: a chain halts
// on it even if the state machine swallowed the error.
func (o *Overlay) Err() error { return o.err }

// Get implements Reader: the value is the caller's to keep.
func (o *Overlay) Get(key []byte) ([]byte, error) {
	v, found, err := o.Lookup(key)
	if err != nil || !found {
		return nil, err
	}
	return bytes.Clone(v), nil
}

// Lookup implements View.
func (o *Overlay) Lookup(key []byte) ([]byte, bool, error) {
	if e, ok := o.writes[string(key)]; ok {
		if e.deleted {
			return nil, false, nil
		}
		return e.value, true, nil
	}
	return o.parent.Lookup(key)
}

// Set implements Store. A nil value is stored as an empty value (Delete removes a key).
func (o *Overlay) Set(key, value []byte) error {
	if len(key) == 0 {
		o.fail(ErrEmptyKey)
		return ErrEmptyKey
	}
	if value == nil {
		value = []byte{}
	}
	o.put(string(key), entry{value: bytes.Clone(value)})
	return nil
}

// Delete implements Store. Deleting an absent key still records a tombstone: the
// writes (and so a chain's app hash) depend only on what was asked for.
func (o *Overlay) Delete(key []byte) error {
	if len(key) == 0 {
		o.fail(ErrEmptyKey)
		return ErrEmptyKey
	}
	o.put(string(key), entry{deleted: true})
	return nil
}

func (o *Overlay) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

func (o *Overlay) put(key string, e entry) {
	if _, ok := o.writes[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.writes[key] = e
}

// Flush applies the overlay's writes to st in ascending key order. When st is an
// Overlay (a block's, under a tx's), the writes move over as they are.
func (o *Overlay) Flush(st Store) error {
	if parent, ok := st.(*Overlay); ok {
		parent.absorb(o)
		return nil
	}
	for _, w := range o.Writes() {
		var err error
		if w.Deleted {
			err = st.Delete([]byte(w.Key))
		} else {
			err = st.Set([]byte(w.Key), w.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// absorb copies the writes of child into o, as if they had been made on o.
func (o *Overlay) absorb(child *Overlay) {
	for _, w := range child.Writes() {
		o.put(w.Key, entry{value: w.Value, deleted: w.Deleted})
	}
}

// Writes returns the overlay's writes in ascending key order. The values are the
// overlay's: the caller must not modify them.
func (o *Overlay) Writes() []Write {
	return o.rangeWrites(nil, nil)
}

// rangeWrites returns the writes with keys in [start, end) in ascending order, as a copy
// that later writes do not disturb.
//
// A block's overlay is scanned after nearly every tx and grows by a few keys each time,
// so it does not sort all its keys for each scan (that made a block quadratic): the
// keys added since the last merge are merged into the sorted ones only once they are
// many; until then a scan picks the ones in its range from them.
func (o *Overlay) rangeWrites(start, end []byte) []Write {
	if added := len(o.keys) - o.nsorted; added > max(64, o.nsorted/4) || (added > 0 && start == nil && end == nil) {
		o.keys = mergeSorted(o.keys[:o.nsorted], sortedCopy(o.keys[o.nsorted:], nil, nil))
		o.nsorted = len(o.keys)
	}
	sorted := o.keys[:o.nsorted]
	lo := sort.SearchStrings(sorted, string(start))
	hi := len(sorted)
	if end != nil {
		hi = max(lo, sort.SearchStrings(sorted, string(end)))
	}
	keys := mergeSorted(sorted[lo:hi], sortedCopy(o.keys[o.nsorted:], start, end))
	out := make([]Write, len(keys))
	for i, k := range keys {
		e := o.writes[k]
		out[i] = Write{Key: k, Value: e.value, Deleted: e.deleted}
	}
	return out
}

// sortedCopy returns the keys in [start, end) (end nil: no bound), sorted.
func sortedCopy(keys []string, start, end []byte) []string {
	var out []string
	for _, k := range keys {
		if k >= string(start) && (end == nil || k < string(end)) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// mergeSorted merges two sorted lists of distinct keys into a new one.
func mergeSorted(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0] < b[0] {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// Iterate implements Reader: the keys and values passed to fn are fn's to keep, and fn
// may write to the overlay (e.g. an expiry sweep) without disturbing the iteration.
func (o *Overlay) Iterate(start, end []byte, fn func(key, value []byte) error) error {
	return o.Scan(start, end, func(k, v []byte) error {
		return fn(bytes.Clone(k), bytes.Clone(v))
	})
}

// Scan implements View: the overlay's writes in [start, end) merged with the parent's
// keys, an own write winning over the parent's key and a tombstone hiding it.
func (o *Overlay) Scan(start, end []byte, fn func(key, value []byte) error) error {
	own := o.rangeWrites(start, end)
	i := 0
	// emitBefore emits the own writes with keys before k (all of them when k is nil).
	emitBefore := func(k []byte) error {
		for ; i < len(own) && (k == nil || own[i].Key < string(k)); i++ {
			if own[i].Deleted {
				continue
			}
			if err := fn([]byte(own[i].Key), own[i].Value); err != nil {
				return err
			}
		}
		return nil
	}
	err := o.parent.Scan(start, end, func(k, v []byte) error {
		if err := emitBefore(k); err != nil {
			return err
		}
		if i < len(own) && own[i].Key == string(k) {
			w := own[i]
			i++
			if w.Deleted {
				return nil
			}
			return fn(k, w.Value)
		}
		return fn(k, v)
	})
	if err != nil {
		return err
	}
	return emitBefore(nil)
}

func unixTime(s int64) time.Time { return time.Unix(s, 0).UTC() }
