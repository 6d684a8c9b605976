package node

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/medledger/medledger/crypto"
)

func testKeyFile(t *testing.T) *KeyFile {
	t.Helper()
	id, _ := crypto.NewRecordID()
	b, _ := crypto.NewWrapKey()
	return &KeyFile{Chain: "chain-a", Record: id.String(), CID: "bafy", Recipient: b.Public(), Wrapped: []byte{1, 2, 3}}
}

// synced is one call of a Syncer: what it synced and what was on disk then.
type synced struct {
	name      string
	dir       bool
	content   []byte // a file's bytes at its sync
	pathThere bool   // whether the key file's path existed at the sync
}

// A key file is whole and synced before it takes its name, and its directory is
// synced after: the sequence file sync < link < directory sync.
func TestKeyFileWriteSyncOrder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.key.json")
	var calls []synced
	sync := func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		c := synced{name: f.Name(), dir: fi.IsDir()}
		if !c.dir {
			c.content, _ = os.ReadFile(f.Name())
		}
		_, err = os.Stat(path)
		c.pathThere = err == nil
		calls = append(calls, c)
		return f.Sync()
	}
	if err := testKeyFile(t).WriteSynced(path, sync); err != nil {
		t.Fatal(err)
	}
	final, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 {
		t.Fatalf("got %d syncs %+v, want the file's then the directory's", len(calls), calls)
	}
	f, d := calls[0], calls[1]
	if f.dir || filepath.Dir(f.name) != dir || f.name == path || !bytes.Equal(f.content, final) || f.pathThere {
		t.Errorf("first sync: got %s (dir %v, path there %v, %d of %d bytes), want the whole temporary file beside the key file, before it is linked",
			f.name, f.dir, f.pathThere, len(f.content), len(final))
	}
	if !d.dir || d.name != dir || !d.pathThere {
		t.Errorf("second sync: got %s (dir %v, path there %v), want the directory %s after the link", d.name, d.dir, d.pathThere, dir)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	assertOnly(t, dir, "r.key.json")
}

// A failed sync, of the file or of the directory, leaves no key file and no
// temporary file.
func TestKeyFileWriteSyncFailure(t *testing.T) {
	errDisk := errors.New("disk gone")
	for name, failDir := range map[string]bool{"file": false, "directory": true} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "r.key.json")
			sync := func(f *os.File) error {
				if fi, _ := f.Stat(); fi.IsDir() == failDir {
					return errDisk
				}
				return f.Sync()
			}
			if err := testKeyFile(t).WriteSynced(path, sync); !errors.Is(err, errDisk) {
				t.Fatalf("got %v, want the sync's error", err)
			}
			assertOnly(t, dir)
		})
	}
}

// assertOnly checks that dir holds exactly the named files.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != len(names) || (len(names) > 0 && got[0] != names[0]) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}
