package kvnet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
)

func testKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
}

// TestSignedKVStoreCheckTx: a signed tx passes CheckTx; an unsigned, tampered or
// truncated one is refused with CodeBadSignature; a recheck does not verify again.
func TestSignedKVStoreCheckTx(t *testing.T) {
	app, err := NewSignedKVStore(0, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer app.(SignedKVStore).Close()
	good := SignTx(testKey(t), []byte("color=teal"))
	tampered := bytes.Clone(good)
	tampered[1] ^= 1
	for _, c := range []struct {
		name string
		tx   []byte
		typ  abcitypes.CheckTxType
		want uint32
	}{
		{"signed", good, abcitypes.CheckTxType_New, abcitypes.CodeTypeOK},
		{"unsigned", []byte("color=teal"), abcitypes.CheckTxType_New, CodeBadSignature},
		{"tampered", tampered, abcitypes.CheckTxType_New, CodeBadSignature},
		{"truncated", good[:len(good)-1], abcitypes.CheckTxType_New, CodeBadSignature},
		{"recheck of tampered", tampered, abcitypes.CheckTxType_Recheck, abcitypes.CodeTypeOK},
	} {
		res, err := app.CheckTx(t.Context(), &abcitypes.RequestCheckTx{Tx: c.tx, Type: c.typ})
		if err != nil || res.Code != c.want {
			t.Errorf("%s: code %d (%s), %v; want code %d", c.name, res.Code, res.Log, err, c.want)
		}
	}
}

// TestLaunch runs the signed kvstore on four validators: a signed tx commits and every
// node stores it; an unsigned one is ErrRejected.
func TestLaunch(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	net, err := Launch(Config{Dir: t.TempDir(), NewApp: NewSignedKVStore})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	if len(net.Nodes) != 4 {
		t.Fatalf("got %d nodes, want the default 4", len(net.Nodes))
	}
	if err := net.WaitHeight(ctx, 2); err != nil {
		t.Fatal(err)
	}
	tx := SignTx(testKey(t), []byte("color=teal"))
	if err := net.Nodes[1].SubmitTx(ctx, tx); err != nil {
		t.Fatalf("submit: %v", err)
	}
	if err := net.Nodes[2].SubmitTx(ctx, []byte("shape=round")); !errors.Is(err, ErrRejected) {
		t.Errorf("unsigned tx: %v, want ErrRejected", err)
	}
	if err := net.WaitHeight(ctx, net.Nodes[1].Height()+1); err != nil {
		t.Fatal(err)
	}
	want := tx[len("color="):]
	for i, n := range net.Nodes {
		res, err := n.cmt.ProxyApp().Query().Query(ctx, &abcitypes.RequestQuery{Data: []byte("color")})
		if err != nil || !bytes.Equal(res.Value, want) {
			t.Errorf("node %d: color = %q, %v; want %q", i, res.Value, err, want)
		}
	}
	if err := net.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no app":        {Dir: t.TempDir()},
		"no dir":        {NewApp: NewKVStore},
		"no validators": {Dir: t.TempDir(), NewApp: NewKVStore, Validators: -1},
	} {
		if _, err := Launch(cfg); err == nil {
			t.Errorf("%s: Launch succeeded", name)
		}
	}
}

// failingInfo is a kvstore whose Info fails: CometBFT's handshake cannot start.
type failingInfo struct{ SignedKVStore }

func (failingInfo) Info(context.Context, *abcitypes.RequestInfo) (*abcitypes.ResponseInfo, error) {
	return nil, errors.New("no info")
}

// TestLaunchFails: a node that cannot start fails Launch with its number, and what was
// made is closed (the apps' stores among it: reopening them works).
func TestLaunchFails(t *testing.T) {
	dir := t.TempDir()
	_, err := Launch(Config{Dir: dir, NewApp: func(i int, home string) (abcitypes.Application, error) {
		app, err := NewSignedKVStore(i, home)
		if err != nil || i < 2 {
			return app, err
		}
		return failingInfo{app.(SignedKVStore)}, nil
	}})
	if err == nil || !strings.Contains(err.Error(), "node 2") {
		t.Fatalf("Launch: %v, want node 2's failure", err)
	}
	for i := range 3 {
		app, err := NewKVStore(i, filepath.Join(dir, fmt.Sprintf("node%d", i)))
		if err != nil {
			t.Fatalf("node %d's store is still open: %v", i, err)
		}
		app.(io.Closer).Close()
	}
}
