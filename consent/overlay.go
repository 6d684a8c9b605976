package consent

import (
	"slices"
	"time"
)

// overlay buffers writes over a Reader, so that a tx's writes apply all together or
// not at all. Reads see the buffered writes; iteration merges them in key order.
type overlay struct {
	base   Reader
	writes map[string][]byte // nil value: deleted
}

func newOverlay(base Reader) *overlay { return &overlay{base: base, writes: map[string][]byte{}} }

func (o *overlay) Get(key []byte) ([]byte, error) {
	if v, ok := o.writes[string(key)]; ok {
		return v, nil
	}
	return o.base.Get(key)
}

func (o *overlay) Set(key, value []byte) error {
	o.writes[string(key)] = append([]byte{}, value...)
	return nil
}

func (o *overlay) Delete(key []byte) error {
	o.writes[string(key)] = nil
	return nil
}

func (o *overlay) Iterate(start, end []byte, fn func(key, value []byte) error) error {
	var own []string
	for k := range o.writes {
		if k >= string(start) && (end == nil || k < string(end)) {
			own = append(own, k)
		}
	}
	slices.Sort(own)
	i := 0
	emit := func(k string) error {
		if v := o.writes[k]; v != nil {
			return fn([]byte(k), v)
		}
		return nil
	}
	err := o.base.Iterate(start, end, func(k, v []byte) error {
		for ; i < len(own) && own[i] < string(k); i++ {
			if err := emit(own[i]); err != nil {
				return err
			}
		}
		if i < len(own) && own[i] == string(k) {
			i++
			return emit(string(k))
		}
		return fn(k, v)
	})
	if err != nil {
		return err
	}
	for ; i < len(own); i++ {
		if err := emit(own[i]); err != nil {
			return err
		}
	}
	return nil
}

// flush writes the buffered writes to st in key order.
func (o *overlay) flush(st Store) error {
	keys := make([]string, 0, len(o.writes))
	for k := range o.writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var err error
		if v := o.writes[k]; v == nil {
			err = st.Delete([]byte(k))
		} else {
			err = st.Set([]byte(k), v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var _ Store = (*overlay)(nil)

func unixTime(s int64) time.Time { return time.Unix(s, 0).UTC() }
