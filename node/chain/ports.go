package chain

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
)

// Ports below the system's ephemeral range are never handed out as the source port of
// an outgoing connection, nor to another process's ":0" listener, so a port picked
// there and found free stays free until it is used. Other processes that pick ports
// the same way (test packages run in parallel, a demo) skip the ports this process
// reserved (see reserve): a node stopped and restarted on its ports finds them free,
// even though they were unbound meanwhile.
const (
	portLow  = 12000
	portHigh = 32000 // Linux's default ephemeral range starts at 32768
)

var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a port on 127.0.0.1 that is free for TCP and for UDP: a random one
// below the system's ephemeral range, never the same twice in a process and reserved
// against processes that pick ports with FreePort too, until this process exits. Peers
// must know a node's ports before it starts, so it cannot listen on port 0; a program
// that binds ports its own way may still take the port before it is used, which a
// random pick in a wide range makes rare.
func FreePort() (int, error) {
	low, high := portRange()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 200 {
		p := low + rand.IntN(high-low)
		if handedOut.ports[p] || !free(p) || !reserve(p) {
			continue
		}
		handedOut.ports[p] = true
		return p, nil
	}
	return 0, errors.New("chain: free port: found none in 200 tries")
}

// portRange is [portLow, portHigh) cut below the system's ephemeral range, or the
// ports above that range when it starts too low to leave room below.
func portRange() (int, int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return portLow, portHigh
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return portLow, portHigh
	}
	switch {
	case lo > portLow+1000:
		return portLow, min(portHigh, lo)
	case hi < 64000:
		return hi + 1, 65536
	default:
		return portLow, portHigh // no room outside the ephemeral range
	}
}

func free(p int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", p)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ReservePort reserves a port another process picked with FreePort and then left (a
// `medledger testnet` that wrote homes and exited) for this process's lifetime, so that
// nodes this process stops and restarts find it free. It reports false if a running
// process holds it already.
func ReservePort(p int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports[p] {
		return true
	}
	if !reserve(p) {
		return false
	}
	handedOut.ports[p] = true
	return true
}
