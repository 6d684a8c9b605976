// Package fhirtest makes FHIR test inputs that are too large to keep in the
// repository.
package fhirtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrSeed means the seed is not a Bundle with entries that have resource ids.
var ErrSeed = errors.New("fhirtest: seed is not a Bundle whose entries have resource ids")

// BigBundle returns a valid Bundle of about size bytes (at least size, less than
// size plus one seed entry; at least one copy of every seed entry) built from the
// entries of seed, a valid Bundle whose
// entries have resource ids 8 characters or longer (a Synthea bundle). Each copy of
// an entry gets a fresh id in place of the old one everywhere in the entry (fullUrl,
// id), so no two entries collide (bdl-7); the copy's first 8 id characters become its
// copy number in hex.
func BigBundle(seed []byte, size int) ([]byte, error) {
	var b struct {
		Type  string            `json:"type"`
		Entry []json.RawMessage `json:"entry"`
	}
	if err := json.Unmarshal(seed, &b); err != nil || len(b.Entry) == 0 {
		return nil, ErrSeed
	}
	ids, err := entryIDs(b.Entry)
	if err != nil {
		return nil, err
	}
	out := bytes.NewBuffer(make([]byte, 0, size+len(seed)))
	fmt.Fprintf(out, `{"resourceType":"Bundle","type":%q,"entry":[`, b.Type)
	for k := 0; k == 0 || out.Len() < size; k++ {
		for i, e := range b.Entry {
			if k > 0 || i > 0 {
				out.WriteByte(',')
			}
			id := ids[i]
			out.Write(bytes.ReplaceAll(e, id, fmt.Appendf(nil, "%08x%s", k, id[8:])))
			if k > 0 && out.Len() >= size {
				break
			}
		}
	}
	out.WriteString("]}")
	return out.Bytes(), nil
}

// entryIDs returns each entry's resource id.
func entryIDs(entries []json.RawMessage) ([][]byte, error) {
	ids := make([][]byte, len(entries))
	for i, e := range entries {
		var en struct {
			Resource struct {
				ID string `json:"id"`
			} `json:"resource"`
		}
		if err := json.Unmarshal(e, &en); err != nil || len(en.Resource.ID) < 8 {
			return nil, ErrSeed
		}
		ids[i] = []byte(en.Resource.ID)
	}
	return ids, nil
}
