package chain

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
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

// TestFreePortReservedAcrossProcesses: a port handed out in one process is not handed
// out by another while the first runs, even when nothing is bound to it (a node stopped
// for a restart), and is free again once that process exits.
func TestFreePortReservedAcrossProcesses(t *testing.T) {
	if os.Getenv("MEDLEDGER_PORTS_CHILD") == "1" {
		for range 10 {
			p, err := FreePort()
			if err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Println(p)
		}
		io.Copy(io.Discard, os.Stdin) // hold the ports until the parent closes stdin
		os.Exit(0)
	}
	if runtime.GOOS == "windows" {
		t.Skip("no flock")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFreePortReservedAcrossProcesses$")
	cmd.Env = append(os.Environ(), "MEDLEDGER_PORTS_CHILD=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var ports []int
	sc := bufio.NewScanner(out)
	for len(ports) < 10 && sc.Scan() {
		p, err := strconv.Atoi(sc.Text())
		if err != nil {
			t.Fatalf("child: %s", sc.Text())
		}
		ports = append(ports, p)
	}
	if len(ports) < 10 {
		t.Fatalf("child handed out %d ports: %v", len(ports), sc.Err())
	}
	for _, p := range ports {
		if reserve(p) {
			t.Fatalf("port %d, handed out by a running process (and bound by none), was reserved again", p)
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if !reserve(ports[0]) {
		t.Fatalf("port %d still reserved after the process that took it exited", ports[0])
	}
}
