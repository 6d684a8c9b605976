//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package chain

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

var reservations struct {
	sync.Mutex
	dir   string     // "" until made; "-" when there is none to use
	files []*os.File // held open (and locked) until the process exits
}

// reserve takes an exclusive lock on the port's file in a directory of this user's
// processes, and holds it until the process exits (the kernel drops the lock then,
// however the process ends). It reports false only if another process holds it. The
// reservation narrows a race between test processes and decides nothing else: with no
// directory to use (not a directory of this user's alone, mode 0700) or no flock there,
// ports are unreserved (reserve reports true).
func reserve(port int) bool {
	reservations.Lock()
	defer reservations.Unlock()
	if reservations.dir == "" {
		reservations.dir = reservationDir()
	}
	if reservations.dir == "-" {
		return true
	}
	f, err := os.OpenFile(filepath.Join(reservations.dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return !errors.Is(err, syscall.EWOULDBLOCK) // EAGAIN: another process holds it
	}
	reservations.files = append(reservations.files, f)
	return true
}

// reservationDir is $TMPDIR/medledger-ports-<uid>, made if missing, if it is a real
// directory owned by this user with no access for others; "-" otherwise.
func reservationDir() string {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("medledger-ports-%d", os.Getuid()))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "-"
	}
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		return "-"
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
		return "-"
	}
	return dir
}
