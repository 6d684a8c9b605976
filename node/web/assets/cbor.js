// A small CBOR (RFC 8949) decoder for what the chain signs: maps, arrays, byte and
// text strings, integers, booleans. It refuses anything else (tags, floats,
// indefinite lengths), so the page reads a tx body exactly as the chain will.

export function decodeCBOR(bytes) {
  const r = { b: bytes, i: 0 };
  const v = item(r, 0);
  if (r.i !== bytes.length) {
    throw new Error("CBOR: bytes after the value");
  }
  return v;
}

function item(r, depth) {
  if (depth > 32) {
    throw new Error("CBOR: nested too deeply");
  }
  const first = byte(r);
  const major = first >> 5;
  const info = first & 31;
  if (major === 7) {
    if (info === 20) return false;
    if (info === 21) return true;
    if (info === 22) return null;
    throw new Error("CBOR: unsupported simple value or float");
  }
  const n = arg(r, info);
  switch (major) {
    case 0:
      return n;
    case 1:
      return -1 - n;
    case 2:
      return take(r, n);
    case 3:
      return new TextDecoder("utf-8", { fatal: true }).decode(take(r, n));
    case 4: {
      const a = [];
      for (let k = 0; k < n; k++) a.push(item(r, depth + 1));
      return a;
    }
    case 5: {
      const m = new Map();
      for (let k = 0; k < n; k++) {
        const key = item(r, depth + 1);
        if (m.has(key)) throw new Error("CBOR: duplicate map key");
        m.set(key, item(r, depth + 1));
      }
      return m;
    }
  }
  throw new Error("CBOR: tags are not allowed");
}

function byte(r) {
  if (r.i >= r.b.length) throw new Error("CBOR: truncated");
  return r.b[r.i++];
}

function take(r, n) {
  if (n > r.b.length - r.i) throw new Error("CBOR: truncated");
  const out = r.b.slice(r.i, r.i + n);
  r.i += n;
  return out;
}

// arg reads an item's argument; larger than 2^53 is refused (no such value here).
function arg(r, info) {
  if (info < 24) return info;
  const len = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
  if (!len) throw new Error("CBOR: indefinite lengths are not allowed");
  let n = 0;
  for (let k = 0; k < len; k++) n = n * 256 + byte(r);
  if (n > Number.MAX_SAFE_INTEGER) throw new Error("CBOR: number too large");
  return n;
}
