// The patient's key, which never leaves this browser: an Ed25519 private key held by
// WebCrypto as non-extractable, kept in IndexedDB. It can be created here (with an
// encrypted backup file made at that moment, the only time its bytes are seen),
// restored from such a backup, or imported from the two files that
// `medledger patient keygen` writes (kek.json and patient.keyset.json).

import { UserError } from "./common.js";

const DB = "medledger";
const STORE = "keys";
const SLOT = "patient";

function openDB() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function withStore(mode, f) {
  const db = await openDB();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = f(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// loadKey is the stored key, {patient, privateKey}, or undefined.
export function loadKey() {
  return withStore("readonly", (s) => s.get(SLOT));
}

// forgetKey deletes the stored key from this browser.
export function forgetKey() {
  return withStore("readwrite", (s) => s.delete(SLOT));
}

async function storeKey(k) {
  await withStore("readwrite", (s) => s.put(k, SLOT));
  return k;
}

// sign signs bytes exactly as given with the stored key.
export async function sign(key, bytes) {
  return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key.privateKey, bytes));
}

// createKey makes a new key, stores it non-extractable and returns it with its
// backup file's text, sealed under the passphrase.
export async function createKey(passphrase) {
  checkPassphrase(passphrase);
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  try {
    const key = await keepPKCS8(pkcs8);
    const backup = await sealBackup(pkcs8, key.patient, passphrase);
    return { key: await storeKey(key), backup };
  } finally {
    pkcs8.fill(0);
  }
}

// keepPKCS8 imports a private key non-extractable, learning its public key on the
// way (an extractable copy exported as JWK, then dropped), and checks that it signs.
async function keepPKCS8(pkcs8) {
  const alg = { name: "Ed25519" };
  const tmp = await crypto.subtle.importKey("pkcs8", pkcs8, alg, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", tmp);
  const pub = fromB64url(jwk.x);
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, alg, false, ["sign"]);
  const probe = new TextEncoder().encode("medledger key check");
  const sig = await crypto.subtle.sign(alg, privateKey, probe);
  const pk = await crypto.subtle.importKey("raw", pub, alg, true, ["verify"]);
  if (!(await crypto.subtle.verify(alg, pk, sig, probe))) {
    throw new Error("the key does not sign correctly");
  }
  return { patient: toHex(pub), privateKey };
}

// The backup file: the key's PKCS #8 bytes under AES-256-GCM, the AES key derived
// from the passphrase with PBKDF2-SHA-256; the patient ID is bound in as associated
// data.
const BACKUP_FORMAT = "medledger patient key backup 1";
const ITERATIONS = 600000;

function checkPassphrase(p) {
  if (typeof p !== "string" || p.length < 10) {
    throw new UserError("the backup passphrase must be at least 10 characters");
  }
}

async function backupKey(passphrase, salt, iterations) {
  const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(passphrase), "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, base,
    { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

async function sealBackup(pkcs8, patient, passphrase) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const aes = await backupKey(passphrase, salt, ITERATIONS);
  const aad = new TextEncoder().encode(BACKUP_FORMAT + "\n" + patient);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, aes, pkcs8));
  return JSON.stringify({
    format: BACKUP_FORMAT, patient,
    kdf: { name: "PBKDF2", hash: "SHA-256", iterations: ITERATIONS, salt: toB64(salt) },
    cipher: { name: "AES-GCM", iv: toB64(iv) },
    key: toB64(sealed),
  }, null, 2) + "\n";
}

// restoreKey opens a backup file's text with its passphrase and stores the key.
export async function restoreKey(text, passphrase) {
  let b;
  try {
    b = JSON.parse(text);
  } catch {
    throw new UserError("this file is not a medledger key backup");
  }
  if (!b || b.format !== BACKUP_FORMAT || !/^[0-9a-f]{64}$/.test(b.patient) || !b.kdf || !b.cipher) {
    throw new UserError("this file is not a medledger key backup");
  }
  const iterations = Number(b.kdf.iterations);
  if (b.kdf.name !== "PBKDF2" || b.kdf.hash !== "SHA-256" || !(iterations >= 100000 && iterations <= 10000000) || b.cipher.name !== "AES-GCM") {
    throw new UserError("this backup uses a format this page does not know");
  }
  const aes = await backupKey(passphrase, fromB64(b.kdf.salt), iterations);
  const aad = new TextEncoder().encode(BACKUP_FORMAT + "\n" + b.patient);
  let pkcs8;
  try {
    pkcs8 = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromB64(b.cipher.iv), additionalData: aad }, aes, fromB64(b.key)));
  } catch {
    throw new UserError("the passphrase is wrong, or the backup file is damaged");
  }
  try {
    const key = await keepPKCS8(pkcs8);
    if (key.patient !== b.patient) {
      throw new UserError("the backup's key does not match the patient ID it names");
    }
    return storeKey(key);
  } finally {
    pkcs8.fill(0);
  }
}

// importKeygen imports a key from the files `medledger patient keygen --dir DIR`
// writes: DIR/kek.json (a Tink AES-256-GCM keyset, clear) and
// DIR/patient.keyset.json (the Ed25519 keyset, encrypted under that KEK with the
// associated data "medledger ed25519 patient"). Given as the two files' texts, in
// any order.
export async function importKeygen(textA, textB) {
  let a, b;
  try {
    a = JSON.parse(textA);
    b = JSON.parse(textB);
  } catch {
    throw new UserError("choose the two files from the key's folder: kek.json and patient.keyset.json");
  }
  const kek = a.encryptedKeyset ? b : a;
  const enc = a.encryptedKeyset ? a : b;
  if (!kek.key || !enc.encryptedKeyset) {
    throw new UserError("choose the two files from the key's folder: kek.json and patient.keyset.json");
  }
  const aes = await kekOf(kek);
  const ct = fromB64(enc.encryptedKeyset);
  if (ct.length < 5 + 12 + 16 || ct[0] !== 1 || be32(ct, 1) !== aes.keyId) {
    throw new UserError("patient.keyset.json is not encrypted under this kek.json");
  }
  let keyset;
  try {
    keyset = new Uint8Array(await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: ct.slice(5, 17), additionalData: new TextEncoder().encode("medledger ed25519 patient") },
      aes.key, ct.slice(17)));
  } catch {
    throw new UserError("patient.keyset.json does not decrypt under this kek.json as a patient key");
  }
  const seed = ed25519Seed(keyset);
  const pkcs8 = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20, ...seed]);
  seed.fill(0);
  keyset.fill(0);
  try {
    return storeKey(await keepPKCS8(pkcs8));
  } finally {
    pkcs8.fill(0);
  }
}

// kekOf is the primary AES-GCM key of a clear Tink keyset (JSON), with its key ID.
async function kekOf(ks) {
  const entry = (ks.key || []).find((k) => k.keyId === ks.primaryKeyId);
  if (!entry || !entry.keyData || entry.keyData.typeUrl !== "type.googleapis.com/google.crypto.tink.AesGcmKey" || entry.outputPrefixType !== "TINK") {
    throw new UserError("kek.json is not the AES-GCM key keygen writes");
  }
  const raw = field(fromB64(entry.keyData.value), 3);
  if (!raw || (raw.length !== 16 && raw.length !== 32)) {
    throw new UserError("kek.json holds no AES key");
  }
  const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"]);
  raw.fill(0);
  return { key, keyId: entry.keyId >>> 0 };
}

// ed25519Seed is the 32-byte private key of a Tink keyset (protobuf) whose primary
// key is an Ed25519 private key without output prefix (RAW).
function ed25519Seed(keyset) {
  const primary = field(keyset, 1);
  for (const key of fields(keyset, 2)) {
    const data = field(key, 1);
    if (field(key, 3) !== primary || !data) {
      continue;
    }
    if (new TextDecoder().decode(field(data, 1)) !== "type.googleapis.com/google.crypto.tink.Ed25519PrivateKey" || field(key, 4) !== 3) {
      throw new UserError("the keyset is not a raw Ed25519 key");
    }
    const seed = field(field(data, 2), 2);
    if (!seed || seed.length !== 32) {
      throw new UserError("the keyset's Ed25519 key is malformed");
    }
    return seed.slice();
  }
  throw new UserError("the keyset has no primary key");
}

// fields reads the values of protobuf field n in msg (varints as numbers, length-
// delimited fields as bytes).
function fields(msg, n) {
  const out = [];
  let i = 0;
  const varint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (i >= msg.length) throw new UserError("the key file is damaged");
      const b = msg[i++];
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) return v;
      if (mul > 2 ** 63) throw new UserError("the key file is damaged");
    }
  };
  while (i < msg.length) {
    const tag = varint();
    const num = Math.floor(tag / 8);
    let v;
    switch (tag % 8) {
      case 0: v = varint(); break;
      case 1: i += 8; continue;
      case 2: {
        const len = varint();
        if (len > msg.length - i) throw new UserError("the key file is damaged");
        v = msg.subarray(i, i + len);
        i += len;
        break;
      }
      case 5: i += 4; continue;
      default: throw new UserError("the key file is damaged");
    }
    if (num === n) out.push(v);
  }
  return out;
}

function field(msg, n) {
  if (!msg) return undefined;
  const all = fields(msg, n);
  return all[all.length - 1];
}

function be32(b, at) {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

export function toHex(b) {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export function toB64(b) {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

export function fromB64(s) {
  const bin = atob(String(s));
  const out = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) out[k] = bin.charCodeAt(k);
  return out;
}

function fromB64url(s) {
  s = s.replace(/-/g, "+").replace(/_/g, "/");
  return fromB64(s + "=".repeat((4 - (s.length % 4)) % 4));
}
