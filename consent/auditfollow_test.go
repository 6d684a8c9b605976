package consent_test

import (
	"testing"

	"github.com/medledger/medledger/consent"
)

// EventsSince pages newest first and returns oldest first, stopping at from.
func TestEventsSince(t *testing.T) {
	var all []consent.AuditEvent
	for i := range uint64(1200) {
		all = append(all, consent.AuditEvent{Index: i, Patient: map[bool]consent.PatientID{true: "p", false: "q"}[i%3 == 0]})
	}
	pages := 0
	page := func(f consent.AuditFilter) (*consent.AuditPage, error) {
		pages++
		var out consent.AuditPage
		for i := int(f.Before) - 1; i >= 0 && len(out.Events) < f.Limit; i-- {
			if f.Patient == "" || all[i].Patient == f.Patient {
				out.Events = append(out.Events, all[i])
			}
			if len(out.Events) == f.Limit && i > 0 {
				out.Next = uint64(i)
			}
		}
		return &out, nil
	}
	got, err := consent.EventsSince(100, 1100, consent.AuditFilter{Patient: "p"}, page)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i := uint64(100); i < 1100; i++ {
		if i%3 == 0 {
			want = append(want, i)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Index != want[i] {
			t.Fatalf("event %d is %d, want %d", i, got[i].Index, want[i])
		}
	}
	if none, _ := consent.EventsSince(5, 5, consent.AuditFilter{}, page); len(none) != 0 {
		t.Fatal("events from an unchanged log")
	}
}
