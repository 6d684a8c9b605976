package consent

import "slices"

// EventsSince collects the events at index ≥ from, among the first size events, that
// match f (its Before and Limit are set here), oldest first, reading pages newest
// first through page (a query of AuditEvents on some node).
func EventsSince(from, size uint64, f AuditFilter, page func(AuditFilter) (*AuditPage, error)) ([]AuditEvent, error) {
	if size <= from {
		return nil, nil
	}
	f.Before, f.Limit = size, MaxAuditLimit
	var events []AuditEvent
	for {
		p, err := page(f)
		if err != nil {
			return nil, err
		}
		for _, e := range p.Events {
			if e.Index < from {
				slices.Reverse(events)
				return events, nil
			}
			events = append(events, e)
		}
		if p.Next == 0 || p.Next <= from {
			break
		}
		f.Before = p.Next
	}
	slices.Reverse(events)
	return events, nil
}
