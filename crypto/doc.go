// Package crypto is medledger's whole cryptographic surface, built on tink-go v2.
//
// It does five things and offers no algorithm knobs:
//
//   - seals a record: a fresh data encryption key (DEK) per record, Streaming AEAD
//     (AES256_GCM_HKDF_1MB), associated data binding the ciphertext to its record ID and
//     chain ID, so memory stays flat however large the record is;
//   - wraps a DEK for one hospital: HPKE (DHKEM_X25519_HKDF_SHA256, HKDF_SHA256,
//     AES_256_GCM) with context info binding chain ID, record ID, grant ID and the
//     recipient's key, so a wrapped key opens for that grant and that hospital only;
//   - signs and verifies exact bytes with standard Ed25519 (RFC 8032), so any client,
//     a browser's WebCrypto included, can verify;
//   - keeps keys at rest as Tink keysets encrypted under a local key encryption key
//     (KEK), in files of mode 0600;
//   - splits a record key for threshold custody: k-of-n Shamir shares with Feldman
//     commitments (circl's secretsharing over Ristretto255), so each custodian checks
//     its share and a requester each share it receives, and any k rebuild the key.
//
// Threshold custody shares the secret a DEK is made from, not the DEK's keyset. NewDEK
// draws a random Ristretto255 scalar and derives the keyset's 32 bytes of key material
// from it with HKDF-SHA256; Split shares that scalar, and Combine interpolates it from
// k verified shares and derives the very same keyset, so a combined key seals and
// opens exactly like the original and wraps like any DEK. A share is therefore 34
// bytes (version, index, scalar) and the commitments 2 + 32·k bytes (version, k,
// elements), stable encodings that are public for the commitments and secret for a
// share. (Sharing a key-encryption key that wraps the keyset instead would add a
// wrapped keyset to store and ship beside the shares, for no gain.) A share leaves a
// custodian only HPKE-wrapped like a DEK (WrapShare), bound to chain, record, grant,
// share index and recipient under its own label, so a wrapped share never opens as
// a wrapped DEK. A DEK read back from a wrapped keyset has no secret and cannot be
// split: a record is shared at ingest, from its fresh DEK. The commitments reveal
// g^secret, which hides the secret under the discrete-logarithm assumption.
//
// Invariants: no function logs or formats key material; a DEK leaves this package only
// HPKE-wrapped (or as the private serialisation Unwrap consumes), and a share only
// HPKE-wrapped or as the secret bytes of Share.Bytes, which callers must zero and never
// send; every failure to open returns a sentinel error that says what to check, never
// a partial plaintext.
package crypto
