package chain

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePort: ports are never handed out twice in a process, lie below the system's
// ephemeral range (so no outgoing connection or ":0" listener takes them meanwhile) and
// can be bound for TCP and UDP.
func TestFreePort(t *testing.T) {
	_, high := portRange()
	seen := map[int]bool{}
	for range 50 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] || p < portLow || p >= high {
			t.Fatalf("port %d: seen before %v, range [%d, %d)", p, seen[p], portLow, high)
		}
		seen[p] = true
	}
	for p := range seen {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		break
	}
}
