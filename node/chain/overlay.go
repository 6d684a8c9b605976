package chain

import (
	"bytes"
	"errors"
	"slices"
	"sort"
)

// view is a readable layer of state: the committed store at the bottom, overlays above.
// scan passes fn's errors (ErrStop included) through unchanged.
type view interface {
	get(key []byte) (value []byte, found bool, err error)
	scan(start, end []byte, fn func(key, value []byte) error) error
}

// entry is one write of an overlay: a value, or a tombstone.
type entry struct {
	value   []byte
	deleted bool
}

// write is an entry with its key, as iterated in key order.
type write struct {
	key string
	entry
}

var errEmptyKey = errors.New("chain: empty key")

// overlay holds writes in memory on top of a parent view. Reads see the overlay's own
// writes first. An overlay is used by one goroutine at a time.
type overlay struct {
	parent view
	writes map[string]entry
	// keys are the keys of writes: keys[:nsorted] in ascending order, then the keys
	// added since, in the order they came.
	keys    []string
	nsorted int
	// err is the first write the overlay refused; the adapter halts on it.
	err error
}

var _ KVWriter = (*overlay)(nil)

func newOverlay(parent view) *overlay {
	return &overlay{parent: parent, writes: map[string]entry{}}
}

// Get implements KVReader.
func (o *overlay) Get(key []byte) ([]byte, error) {
	v, found, err := o.get(key)
	if err != nil || !found {
		return nil, err
	}
	return bytes.Clone(v), nil
}

func (o *overlay) get(key []byte) ([]byte, bool, error) {
	if e, ok := o.writes[string(key)]; ok {
		if e.deleted {
			return nil, false, nil
		}
		return e.value, true, nil
	}
	return o.parent.get(key)
}

// Set implements KVWriter.
func (o *overlay) Set(key, value []byte) error {
	if len(key) == 0 {
		o.fail(errEmptyKey)
		return errEmptyKey
	}
	if value == nil {
		value = []byte{}
	}
	o.put(string(key), entry{value: bytes.Clone(value)})
	return nil
}

// Delete implements KVWriter. Deleting an absent key still records a tombstone: the
// writes (and so the app hash) depend only on what the state machine asked for.
func (o *overlay) Delete(key []byte) error {
	if len(key) == 0 {
		o.fail(errEmptyKey)
		return errEmptyKey
	}
	o.put(string(key), entry{deleted: true})
	return nil
}

func (o *overlay) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

func (o *overlay) put(key string, e entry) {
	if _, ok := o.writes[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.writes[key] = e
}

// absorb copies the writes of child (an overlay on top of o) into o, as if they had been
// made on o.
func (o *overlay) absorb(child *overlay) {
	for _, w := range child.sorted() {
		o.put(w.key, w.entry)
	}
}

// sorted returns the overlay's writes in ascending key order.
func (o *overlay) sorted() []write {
	return o.rangeWrites(nil, nil)
}

// rangeWrites returns the writes with keys in [start, end) in ascending order, as a copy
// that later writes do not disturb.
//
// A block's overlay is scanned after nearly every tx and grows by a few keys each time,
// so it does not sort all its keys for each scan (that made a block quadratic): the
// keys added since the last merge are merged into the sorted ones only once they are
// many; until then a scan picks the ones in its range from them.
func (o *overlay) rangeWrites(start, end []byte) []write {
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
	out := make([]write, len(keys))
	for i, k := range keys {
		out[i] = write{key: k, entry: o.writes[k]}
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

// Iterate implements KVReader.
func (o *overlay) Iterate(start, end []byte, fn func(key, value []byte) error) error {
	err := o.scan(start, end, func(k, v []byte) error {
		return fn(bytes.Clone(k), bytes.Clone(v))
	})
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

// scan merges the overlay's writes in [start, end) with the parent's keys: an own write
// wins over the parent's key, a tombstone hides it.
func (o *overlay) scan(start, end []byte, fn func(key, value []byte) error) error {
	own := o.rangeWrites(start, end)
	i := 0
	// emitBefore emits the own writes with keys before k (all of them when k is nil).
	emitBefore := func(k []byte) error {
		for ; i < len(own) && (k == nil || own[i].key < string(k)); i++ {
			if own[i].deleted {
				continue
			}
			if err := fn([]byte(own[i].key), own[i].value); err != nil {
				return err
			}
		}
		return nil
	}
	err := o.parent.scan(start, end, func(k, v []byte) error {
		if err := emitBefore(k); err != nil {
			return err
		}
		if i < len(own) && own[i].key == string(k) {
			w := own[i]
			i++
			if w.deleted {
				return nil
			}
			return fn(k, w.value)
		}
		return fn(k, v)
	})
	if err != nil {
		return err
	}
	return emitBefore(nil)
}
