package kvnet

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"path/filepath"

	dbm "github.com/cometbft/cometbft-db"
	"github.com/cometbft/cometbft/abci/example/kvstore"
	abcitypes "github.com/cometbft/cometbft/abci/types"
)

// NewKVStore is CometBFT's kvstore example app as it is, over a LevelDB in the node's
// data directory. Its txs are "key=value".
func NewKVStore(_ int, home string) (abcitypes.Application, error) {
	db, err := dbm.NewGoLevelDB("kvstore", filepath.Join(home, "data"))
	if err != nil {
		return nil, err
	}
	return kvstore.NewApplication(db), nil
}

// NewSignedKVStore is NewKVStore whose txs must be signed (see SignedKVStore).
func NewSignedKVStore(i int, home string) (abcitypes.Application, error) {
	app, err := NewKVStore(i, home)
	if err != nil {
		return nil, err
	}
	return SignedKVStore{app.(*kvstore.Application)}, nil
}

// CodeBadSignature is SignedKVStore's CheckTx code for a tx without a valid signature.
const CodeBadSignature uint32 = 100

// ErrBadSignature is a signed tx whose signature does not verify or is missing.
var ErrBadSignature = errors.New("kvnet: bad or missing signature")

// SignedKVStore is CometBFT's kvstore whose txs carry an Ed25519 signature (SignTx):
// what any chain whose txs are authenticated pays, once per validator per tx. CheckTx
// of a new tx verifies it; a recheck after a block (the same bytes, verified before)
// does not, and neither do PrepareProposal, ProcessProposal or FinalizeBlock, which
// are kvstore's own. The key and signature ride at the end of the value in an alphabet
// kvstore's tx rules accept, so kvstore stores the whole tx as it is.
type SignedKVStore struct {
	*kvstore.Application
}

// CheckTx verifies a new tx's signature, then lets kvstore check its form.
func (a SignedKVStore) CheckTx(ctx context.Context, req *abcitypes.RequestCheckTx) (*abcitypes.ResponseCheckTx, error) {
	if req.Type == abcitypes.CheckTxType_New {
		if err := VerifyTx(req.Tx); err != nil {
			return &abcitypes.ResponseCheckTx{Code: CodeBadSignature, Log: err.Error()}, nil
		}
	}
	return a.Application.CheckTx(ctx, req)
}

// sigEncoding has neither '=' nor ':', the only bytes kvstore's tx rules look at.
var sigEncoding = base64.RawURLEncoding

// SigOverhead is the bytes SignTx appends: the signer's public key and the signature.
var SigOverhead = sigEncoding.EncodedLen(ed25519.PublicKeySize + ed25519.SignatureSize)

// SignTx appends key's public key and its signature over body (the exact bytes, a
// "key=value" tx) to body.
func SignTx(key ed25519.PrivateKey, body []byte) []byte {
	raw := append(key.Public().(ed25519.PublicKey), ed25519.Sign(key, body)...)
	return sigEncoding.AppendEncode(body, raw)
}

// VerifyTx checks a tx SignTx made.
func VerifyTx(tx []byte) error {
	if len(tx) < SigOverhead {
		return ErrBadSignature
	}
	body, enc := tx[:len(tx)-SigOverhead], tx[len(tx)-SigOverhead:]
	raw, err := sigEncoding.DecodeString(string(enc))
	if err != nil {
		return ErrBadSignature
	}
	pub, sig := ed25519.PublicKey(raw[:ed25519.PublicKeySize]), raw[ed25519.PublicKeySize:]
	if !ed25519.Verify(pub, body, sig) {
		return ErrBadSignature
	}
	return nil
}
