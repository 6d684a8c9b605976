package fhir

// arena holds the slabs the values of one streamed Bundle entry were taken from,
// to be cleared and reused for the next entry: a Bundle's parse then allocates
// about one entry's tree, not one per entry (which would be garbage about 1.7
// times the input's size). Nothing may point into the arena once the entry has
// been handed on (bundleStream keeps slices of the input, never nodes).
type arena struct {
	nodes   [][]node
	members [][]member
	items   [][]*node
	n, m, i int // slabs handed out since the last reset

	saved struct { // the parser's own slabs, while the arena lends its
		nodes   []node
		members []member
		items   []*node
	}
}

// begin makes p take its slabs from the arena.
func (a *arena) begin(p *parser) {
	a.saved.nodes, a.saved.members, a.saved.items = p.nodes, p.members, p.items
	p.nodes, p.members, p.items = nil, nil, nil
	p.arena = a
}

// end clears what the entry used and gives p its own slabs back.
func (a *arena) end(p *parser) {
	clearUsed(a.nodes[:a.n], len(p.nodes))
	clearUsed(a.members[:a.m], len(p.members))
	clearUsed(a.items[:a.i], len(p.items))
	a.n, a.m, a.i = 0, 0, 0
	p.nodes, p.members, p.items = a.saved.nodes, a.saved.members, a.saved.items
	a.saved.nodes, a.saved.members, a.saved.items = nil, nil, nil
	p.arena = nil
}

// clearUsed zeroes the used part of slabs, the last of which has rest unused.
func clearUsed[T any](slabs [][]T, rest int) {
	for i, s := range slabs {
		if i == len(slabs)-1 {
			s = s[:len(s)-rest]
		}
		clear(s)
	}
}

// slab returns a zeroed slab of at least n elements from list (one of the arena's
// lists, whose next unused index is *next), reusing one if it is large enough.
func slab[T any](list *[][]T, next *int, n, size int) []T {
	i := *next
	*next++
	if i < len(*list) && len((*list)[i]) >= n {
		return (*list)[i]
	}
	s := make([]T, max(n, size))
	if i < len(*list) {
		(*list)[i] = s
	} else {
		*list = append(*list, s)
	}
	return s
}

func (p *parser) nodeSlab() []node {
	if p.arena == nil {
		return make([]node, slabNodes)
	}
	return slab(&p.arena.nodes, &p.arena.n, slabNodes, slabNodes)
}

func (p *parser) memberSlab(n int) []member {
	if p.arena == nil {
		return make([]member, max(n, slabMembers))
	}
	return slab(&p.arena.members, &p.arena.m, n, slabMembers)
}

func (p *parser) itemSlab(n int) []*node {
	if p.arena == nil {
		return make([]*node, max(n, slabMembers))
	}
	return slab(&p.arena.items, &p.arena.i, n, slabMembers)
}
