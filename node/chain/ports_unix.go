//go:build unix

package chain

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

var reservations struct {
	sync.Mutex
	dir   string
	files []*os.File // held open (and locked) until the process exits
}

// reserve takes an exclusive lock on the port's file in a directory shared by this
// user's processes, and holds it until the process exits (the kernel drops the lock
// then, however the process ends). It reports false if another process holds it. A
// directory that cannot be made leaves ports unreserved (reserve reports true): the
// reservation narrows a race between test processes; it decides nothing else.
func reserve(port int) bool {
	reservations.Lock()
	defer reservations.Unlock()
	if reservations.dir == "" {
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("medledger-ports-%d", os.Getuid()))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return true
		}
		reservations.dir = dir
	}
	f, err := os.OpenFile(filepath.Join(reservations.dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	reservations.files = append(reservations.files, f)
	return true
}
