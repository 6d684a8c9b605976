// Package crypto is medledger's whole cryptographic surface, built on tink-go v2.
//
// It does four things and offers no algorithm knobs:
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
//     (KEK), in files of mode 0600.
//
// Invariants: no function logs or formats key material; a DEK leaves this package only
// HPKE-wrapped (or as the private serialisation Unwrap consumes); every failure to open
// returns a sentinel error that says what to check, never a partial plaintext.
package crypto
