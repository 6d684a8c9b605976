package home

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the file a process holds (flock) while it runs a home's node.
const LockFile = "data/node.lock"

// ErrInUse is a home another process (or another node in this one) holds.
var ErrInUse = errors.New("home: in use")

// Lock takes the home for this process: an exclusive lock on data/node.lock, which
// also records this process's ID. If another process holds it, the error says which
// (wrapping ErrInUse). Unlock releases it; the lock also ends with the process.
func (h *Home) Lock() (unlock func() error, err error) {
	path := h.Path(LockFile)
	if err := os.MkdirAll(h.Path("data"), 0o700); err != nil {
		return nil, fmt.Errorf("home: lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("home: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another medledger process"
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder += fmt.Sprintf(" (pid %d)", pid)
			}
			return nil, fmt.Errorf("%w: %s holds %s; stop it first", ErrInUse, holder, h.Dir)
		}
		return nil, fmt.Errorf("home: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() error {
		_ = f.Truncate(0)
		return f.Close() // closing the descriptor releases the flock
	}, nil
}
