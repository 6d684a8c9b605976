package fhir

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// streamCases are Bundles (and near-Bundles) whose entries the streaming parse
// must judge exactly as a parse of the whole tree does.
var streamCases = []string{
	`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b","resource":{"resourceType":"Patient","id":"p"}}]}`,
	// resourceType after the entries
	`{"type":"collection","entry":[{"fullUrl":"x","resource":{"resourceType":"Patient","id":"p"}},{"fullUrl":"x"}],"resourceType":"Bundle"}`,
	// not a Bundle: a List's entries, named before and after its resourceType
	`{"entry":[{"item":{"reference":"Patient/p"}}],"resourceType":"List","status":"current","mode":"working"}`,
	`{"resourceType":"List","status":"current","mode":"working","entry":[{"item":{"reference":"Patient/p"}},null]}`,
	`{"entry":[{}],"resourceType":"Patient"}`,
	`{"entry":[{}]}`,
	`{"entry":[{}],"resourceType":7}`,
	// null entries, with and without an _entry partner
	`{"resourceType":"Bundle","type":"collection","entry":[null,{"fullUrl":"urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b"}]}`,
	`{"resourceType":"Bundle","type":"collection","entry":[null,{}],"_entry":[{"id":"a"},null]}`,
	// duplicate and non-array entry properties
	`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"a:b"}],"entry":[{"fullUrl":"x"}]}`,
	`{"resourceType":"Bundle","type":"collection","entry":{"fullUrl":"a:b"},"entry":[{"fullUrl":"x"}]}`,
	`{"resourceType":"Bundle","type":"collection","entry":[]}`,
	`{"resourceType":"Bundle","type":"collection","entry":[1,"s",[]]}`,
	// bdl-7, and history bundles (which allow duplicates), type named last
	`{"resourceType":"Bundle","entry":[{"fullUrl":"a:b","resource":{"resourceType":"Patient","id":"p"}},{"fullUrl":"a:b","resource":{"resourceType":"Patient","id":"p"}}],"type":"history"}`,
	`{"resourceType":"Bundle","entry":[{"fullUrl":"a:b","resource":{"resourceType":"Patient","id":"p"}},{"fullUrl":"a:b","resource":{"resourceType":"Patient","id":"p"}}],"type":"collection"}`,
	`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"a:b","resource":{"resourceType":"Patient","id":"p","meta":{"versionId":"1"}}},{"fullUrl":"a:b","resource":{"resourceType":"Patient","id":"p","meta":{"versionId":"2"}}}]}`,
	// local references inside entries, resolved and not
	`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"#p"},"contained":[{"resourceType":"Patient","id":"p"}]}},{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"#q"}}}]}`,
	// a Bundle in a Bundle, and syntax errors after some entries
	`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"x"},{"fullUrl":"x"}]}}]}`,
	`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"x"},{"fullUrl":"x",}]}`,
	`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"x"}],"type":"batch","entry":[}`,
	// issue 10: the type-dependent invariants with the type named after the
	// entries, repeated links, markup in strings and a narrative with a DOCTYPE
	`{"resourceType":"Bundle","entry":[{"fullUrl":"urn:uuid:3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b","resource":{"resourceType":"Patient","id":"p"}},{"fullUrl":"a:c"}],"type":"transaction"}`,
	`{"resourceType":"Bundle","entry":[{"fullUrl":"a:b","resource":{"resourceType":"Patient","id":"p"},"search":{"mode":"match"},"response":{"status":"200"}}],"link":[{"relation":"next","url":"a:n"},{"relation":"next","url":"a:m"}],"type":"searchset","total":1}`,
	`{"resourceType":"Bundle","type":"collection","total":3,"entry":[{"fullUrl":"a:b","resource":{"resourceType":"Patient","id":"p","name":[{"text":"P<script>x</script>"}]}},{"fullUrl":"a:c","request":{"method":"GET","url":"x"}}]}`,
	`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"a:b","resource":{"resourceType":"Patient","id":"p","text":{"status":"generated","div":"<!DOCTYPE div [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><div xmlns=\"http://www.w3.org/1999/xhtml\">&x;</div>"}}}]}`,
}

// parseWhole is parse without streaming: the whole tree at once.
func parseWhole(t *testing.T, data []byte, lim Limits) (*Bundle, error) {
	t.Helper()
	sch, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	lim = lim.withDefaults()
	raw := bytes.Clone(data)
	src := string(raw)
	tr, err := validate(sch, src, lim, false)
	if err != nil {
		return nil, err
	}
	r := &Resource{Type: tr.root.text("resourceType"), ID: tr.root.text("id"), Raw: raw}
	if r.Type != "Bundle" {
		return nil, nil
	}
	return bundleOf(r, tr), nil
}

// sameVerdict checks that streaming and the whole tree agree on data: the same
// issues (when fewer than the cap, which each fills in its own order) or the
// same Bundle.
func sameVerdict(t *testing.T, data []byte, lim Limits) {
	t.Helper()
	want, wantErr := parseWhole(t, data, lim)
	r, tr, err := parse(bytes.Clone(data), lim)
	if wantErr != nil || err != nil {
		w, g := issuesOf(t, wantErr), issuesOf(t, err)
		if len(w) < maxIssues && !reflect.DeepEqual(g, w) {
			t.Errorf("%.200s\nstreaming got:%s\nwhole tree got:%s", data, describe(g), describe(w))
		}
		return
	}
	if want == nil {
		if r.Type == "Bundle" {
			t.Errorf("%.200s: streaming got a Bundle, the whole tree a %s", data, r.Type)
		}
		return
	}
	got := bundleOf(r, tr)
	if got.BundleType != want.BundleType || !reflect.DeepEqual(got.Entries, want.Entries) || !bytes.Equal(got.Raw, data) {
		t.Errorf("%.200s: streaming got %q %+v, whole tree %q %+v", data, got.BundleType, got.Entries, want.BundleType, want.Entries)
	}
}

func TestStreamingMatchesWholeTree(t *testing.T) {
	for _, c := range streamCases {
		sameVerdict(t, []byte(c), Limits{})
	}
	long := strings.Repeat("a", maxStringChars+1) // not a fuzz seed: too big to mutate
	sameVerdict(t, []byte(`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"a:b","resource":{"resourceType":"Patient","name":[{"text":"`+long+`"}]}}]}`), Limits{})
	files, _ := filepath.Glob(filepath.Join(testdata, "*", "*.json"))
	if len(files) < 40 {
		t.Fatalf("found %d testdata files, want the corpus", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sameVerdict(t, data, Limits{})
	}
}

// FuzzStreamingMatchesWholeTree: streaming a Bundle's entries never changes the
// verdict.
func FuzzStreamingMatchesWholeTree(f *testing.F) {
	for _, c := range streamCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameVerdict(t, data, Limits{MaxDepth: 32})
	})
}

// MaxValues bounds the values held at once: the whole input for a resource, one
// entry (plus the Bundle's own elements) for a Bundle.
func TestMaxValues(t *testing.T) {
	var entries []string
	for i := range 100 {
		entries = append(entries, `{"fullUrl":"urn:x:`+strconv.Itoa(i)+`","resource":{"resourceType":"Patient"}}`) // 4 values
	}
	bundle := `{"resourceType":"Bundle","type":"collection","entry":[` + strings.Join(entries, ",") + `]}`
	// 4 values before the entries (the Bundle, its two strings, the array), then
	// 4 per entry: 404 in a whole tree.
	if b, err := ParseBundle([]byte(bundle), Limits{MaxValues: 8}); err != nil || len(b.Entries) != 100 {
		t.Fatalf("100 entries of 4 values with MaxValues 8: got %v, want them validated one at a time", err)
	}
	if _, err := ParseBundle([]byte(bundle), Limits{MaxValues: 7}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("an entry of 4 values after 4 with MaxValues 7: got %v, want ErrTooLarge", err)
	}
	tests := []struct {
		name, src string
		max       int
	}{
		{"resource", `{"resourceType":"Patient","name":[{"given":["a","b","c","d"]}]}`, 8}, // 9 values
		{"one entry", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","name":[{"given":["a","b","c","d","e","f"]}]}}]}`, 12},
		{"dense array", `{"resourceType":"Patient","x":[` + strings.Repeat("0,", 1000) + `0]}`, 500},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.src), Limits{MaxValues: tc.max})
		if got := issuesOf(t, err); len(got) != 1 || got[0].Code != codeTooCostly || !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s over MaxValues %d: got%s\nwant one too-costly issue", tc.name, tc.max, describe(got))
		}
	}
	if _, err := Parse([]byte(tests[0].src), Limits{MaxValues: 9}); err != nil {
		t.Errorf("at exactly MaxValues: got %v, want success", err)
	}
}

// sizedReader announces a size that may not be the truth.
type sizedReader struct {
	io.Reader
	size int64
}

func (s sizedReader) Size() int64 { return s.size }

// ReadBundle reads exactly the input whatever size its reader announces, and
// keeps a truncated body an error.
func TestReadBundleAnnouncedSize(t *testing.T) {
	data := largestSynthea(t)
	for _, size := range []int64{int64(len(data)), 1, int64(len(data)) - 100, int64(len(data)) + 100, 1 << 40} {
		b, err := ReadBundle(sizedReader{iotest.HalfReader(bytes.NewReader(data)), size}, Limits{})
		if err != nil || !bytes.Equal(b.Raw, data) {
			t.Errorf("announced %d of %d bytes: got %v, want the bundle", size, len(data), err)
		}
	}
	_, err := ReadBundle(sizedReader{io.MultiReader(bytes.NewReader(data[:100]), iotest.ErrReader(io.ErrUnexpectedEOF)), int64(len(data))}, Limits{})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated body: got %v, want io.ErrUnexpectedEOF", err)
	}
	_, err = ReadBundle(sizedReader{bytes.NewReader(data), int64(len(data))}, Limits{MaxBytes: int64(len(data) - 1)})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("announced and over MaxBytes: got %v, want ErrTooLarge", err)
	}
}
