package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/iotest"
)

// PatientID and ResourceTypes agree with a plain encoding/json reading of
// each Synthea bundle.
func TestBundleSummary(t *testing.T) {
	for name, data := range readDir(t, "synthea") {
		t.Run(name, func(t *testing.T) {
			var plain struct {
				Type  string
				Entry []struct {
					FullURL  string `json:"fullUrl"`
					Resource struct{ ResourceType, ID string }
				}
			}
			if err := json.Unmarshal(data, &plain); err != nil {
				t.Fatal(err)
			}
			var patients []string
			types := map[string]bool{}
			for _, e := range plain.Entry {
				types[e.Resource.ResourceType] = true
				if e.Resource.ResourceType == "Patient" {
					patients = append(patients, e.Resource.ID)
				}
			}
			wantTypes := sortedKeys(types)

			b, err := ParseBundle(data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if b.BundleType != plain.Type || len(b.Entries) != len(plain.Entry) {
				t.Errorf("got type %q with %d entries, want %q with %d", b.BundleType, len(b.Entries), plain.Type, len(plain.Entry))
			}
			for i, e := range b.Entries {
				if p := plain.Entry[i]; e != (Entry{p.FullURL, p.Resource.ResourceType, p.Resource.ID}) {
					t.Errorf("entry %d: got %+v, want %+v", i, e, p)
				}
			}
			if got := b.ResourceTypes(); !slices.Equal(got, wantTypes) {
				t.Errorf("ResourceTypes: got %q, want %q", got, wantTypes)
			}
			id, ok := b.PatientID()
			wantOK := len(patients) == 1
			if ok != wantOK || (ok && id != patients[0]) {
				t.Errorf("PatientID: got %q, %v; want the one Patient among %q", id, ok, patients)
			}
		})
	}
}

func TestPatientIDNeedsExactlyOne(t *testing.T) {
	tests := []struct {
		entries []Entry
		id      string
		ok      bool
	}{
		{nil, "", false},
		{[]Entry{{Type: "Patient", ID: "a"}, {Type: "Observation", ID: "o"}}, "a", true},
		{[]Entry{{Type: "Patient", ID: "a"}, {Type: "Patient", ID: "b"}}, "", false},
		{[]Entry{{Type: "Patient"}}, "", false},
	}
	for _, tc := range tests {
		b := &Bundle{Entries: tc.entries}
		if id, ok := b.PatientID(); ok != tc.ok || (ok && id != tc.id) {
			t.Errorf("%+v: got %q, %v; want %q, %v", tc.entries, id, ok, tc.id, tc.ok)
		}
	}
	b := &Bundle{Entries: []Entry{{Type: "Observation"}, {Type: "Patient"}, {}, {Type: "Observation"}}}
	if got := b.ResourceTypes(); !slices.Equal(got, []string{"Observation", "Patient"}) {
		t.Errorf("ResourceTypes: got %q", got)
	}
}

func TestParseBundleWantsBundle(t *testing.T) {
	src := []byte("{\n  \"resourceType\": \"Patient\"\n}")
	_, err := ParseBundle(src, Limits{})
	got := issuesOf(t, err)
	if len(got) != 1 || got[0].Path != "" || got[0].Line != 2 || !strings.Contains(got[0].Message, "a Bundle is required") {
		t.Errorf("got:%s\nwant one issue at the document, line 2, asking for a Bundle", describe(got))
	}
}

func TestReadBundle(t *testing.T) {
	data := largestSynthea(t)
	b, err := ReadBundle(bytes.NewReader(data), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Raw, data) {
		t.Error("Raw differs from the bytes read")
	}

	_, err = ReadBundle(bytes.NewReader(data), Limits{MaxBytes: int64(len(data) - 1)})
	if got := issuesOf(t, err); len(got) != 1 || got[0].Code != "too-costly" || !errors.Is(err, ErrTooLarge) {
		t.Errorf("over MaxBytes: got %v:%s\nwant one too-costly issue", err, describe(got))
	}
	if _, err := ReadBundle(bytes.NewReader(data), Limits{MaxBytes: int64(len(data))}); err != nil {
		t.Errorf("at exactly MaxBytes: got %v, want success", err)
	}

	broken := iotest.TimeoutReader(bytes.NewReader(data))
	_, err = ReadBundle(io.MultiReader(strings.NewReader(""), broken), Limits{})
	var ve *ValidationError
	if err == nil || errors.As(err, &ve) || !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("reader failure: got %v, want the reader's error, wrapped", err)
	}
}

// Raw is a copy of the input, byte for byte, unaffected by later changes
// to the caller's slice.
func TestRawVerbatim(t *testing.T) {
	src := []byte("\n\t{ \"resourceType\" : \"Patient\",\"id\":\"a\" ,\r\n \"name\":[{\"family\":\"M\\u00fcller\"}] }  \n")
	want := bytes.Clone(src)
	r, err := Parse(src, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	src[5] = 'X'
	if !bytes.Equal(r.Raw, want) || r.Type != "Patient" || r.ID != "a" {
		t.Errorf("got %q (%s/%s), want %q (Patient/a)", r.Raw, r.Type, r.ID, want)
	}
}

// Resource types of the corpus, to document coverage of the required table.
func TestRequiredTableCoversCorpus(t *testing.T) {
	table := requiredElements()
	for name, data := range readDir(t, "synthea") {
		b, err := ParseBundle(data, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range b.ResourceTypes() {
			if _, ok := table[typ]; !ok && !slices.Contains(noRequiredElements(), typ) {
				t.Errorf("%s: resource type %s is neither in requiredElements nor known to need none", name, typ)
			}
		}
	}
}

// noRequiredElements are the corpus resource types whose R4 definitions
// have no element with minimum cardinality 1.
func noRequiredElements() []string {
	s := []string{"Patient", "CareTeam", "Organization", "Practitioner", "Device", "Location", "PractitionerRole", "SupplyDelivery", "Medication"}
	sort.Strings(s)
	return s
}
