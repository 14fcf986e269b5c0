// Canonical msgpack (docs/PROTOCOL.md §2): the strict subset branchnet signs and hashes.
//
// Values: null, booleans, integers (a Number up to 2^53 in magnitude, a BigInt beyond),
// text strings, byte strings (Uint8Array) and arrays. No floats, maps or ext types.
// decode() rejects anything that is not the one canonical encoding of its value: it
// parses, re-encodes and compares byte for byte (§2.2), checks the depth limit (16),
// trailing bytes and UTF-8.

export class DecodeError extends Error {
  constructor(message) { super(message); this.name = 'DecodeError'; }
}

const MAX_DEPTH = 16;
const TWO53 = 2 ** 53;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

class Writer {
  constructor() { this.buf = new Uint8Array(256); this.len = 0; }
  reserve(n) {
    if (this.len + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    bigger.set(this.buf.subarray(0, this.len));
    this.buf = bigger;
  }
  byte(b) { this.reserve(1); this.buf[this.len++] = b; }
  bytes(u8) { this.reserve(u8.length); this.buf.set(u8, this.len); this.len += u8.length; }
  uint(value, width) { // big-endian unsigned of width bytes; value a BigInt
    this.reserve(width);
    for (let i = width - 1; i >= 0; i--) { this.buf[this.len + i] = Number(value & 0xffn); value >>= 8n; }
    this.len += width;
  }
  result() { return this.buf.slice(0, this.len); }
}

function writeInt(w, v) {
  if (v >= 0n) {
    if (v < 128n) w.byte(Number(v));
    else if (v < 1n << 8n) { w.byte(0xcc); w.uint(v, 1); }
    else if (v < 1n << 16n) { w.byte(0xcd); w.uint(v, 2); }
    else if (v < 1n << 32n) { w.byte(0xce); w.uint(v, 4); }
    else if (v < 1n << 64n) { w.byte(0xcf); w.uint(v, 8); }
    else throw new DecodeError('integer out of range');
  } else {
    if (v >= -32n) w.byte(Number(v & 0xffn));
    else if (v >= -(1n << 7n)) { w.byte(0xd0); w.uint(BigInt.asUintN(8, v), 1); }
    else if (v >= -(1n << 15n)) { w.byte(0xd1); w.uint(BigInt.asUintN(16, v), 2); }
    else if (v >= -(1n << 31n)) { w.byte(0xd2); w.uint(BigInt.asUintN(32, v), 4); }
    else if (v >= -(1n << 63n)) { w.byte(0xd3); w.uint(BigInt.asUintN(64, v), 8); }
    else throw new DecodeError('integer out of range');
  }
}

function writeHead(w, n, fix, fixMax, c8, c16, c32) {
  if (n <= fixMax) w.byte(fix | n);
  else if (c8 !== null && n < 256) { w.byte(c8); w.uint(BigInt(n), 1); }
  else if (n < 65536) { w.byte(c16); w.uint(BigInt(n), 2); }
  else { w.byte(c32); w.uint(BigInt(n), 4); }
}

function write(w, v) {
  if (v === null) w.byte(0xc0);
  else if (v === false) w.byte(0xc2);
  else if (v === true) w.byte(0xc3);
  else if (typeof v === 'bigint') writeInt(w, v);
  else if (typeof v === 'number') {
    if (!Number.isInteger(v) || Math.abs(v) > TWO53) throw new DecodeError(`not an exact integer: ${v}`);
    writeInt(w, BigInt(v));
  } else if (typeof v === 'string') {
    const b = utf8.encode(v);
    writeHead(w, b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
    w.bytes(b);
  } else if (v instanceof Uint8Array) {
    if (v.length < 256) { w.byte(0xc4); w.uint(BigInt(v.length), 1); }
    else if (v.length < 65536) { w.byte(0xc5); w.uint(BigInt(v.length), 2); }
    else { w.byte(0xc6); w.uint(BigInt(v.length), 4); }
    w.bytes(v);
  } else if (Array.isArray(v)) {
    writeHead(w, v.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const item of v) write(w, item);
  } else throw new DecodeError(`cannot encode ${typeof v}`);
}

/** The canonical encoding of `value`. */
export function encode(value) {
  const w = new Writer();
  write(w, value);
  return w.result();
}

class Reader {
  constructor(bytes) { this.b = bytes; this.pos = 0; }
  need(n) { if (this.pos + n > this.b.length) throw new DecodeError('truncated'); }
  uint(width) {
    this.need(width);
    let v = 0n;
    for (let i = 0; i < width; i++) v = (v << 8n) | BigInt(this.b[this.pos + i]);
    this.pos += width;
    return v;
  }
  len(width) { return Number(this.uint(width)); }
  take(n) { this.need(n); const out = this.b.subarray(this.pos, this.pos + n); this.pos += n; return out; }
  str(n) {
    try { return strictUtf8.decode(this.take(n)); } catch (e) {
      if (e instanceof DecodeError) throw e;
      throw new DecodeError('string is not valid UTF-8');
    }
  }
  array(n, depth) {
    if (n > this.b.length - this.pos) throw new DecodeError('truncated');
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }
  value(depth) {
    if (depth > MAX_DEPTH) throw new DecodeError(`nested deeper than ${MAX_DEPTH}`);
    this.need(1);
    const t = this.b[this.pos++];
    if (t <= 0x7f) return t;
    if (t >= 0xe0) return t - 0x100;
    if (t >= 0x90 && t <= 0x9f) return this.array(t & 0x0f, depth);
    if (t >= 0xa0 && t <= 0xbf) return this.str(t & 0x1f);
    switch (t) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.take(this.len(1));
      case 0xc5: return this.take(this.len(2));
      case 0xc6: return this.take(this.len(4));
      case 0xcc: return this.len(1);
      case 0xcd: return this.len(2);
      case 0xce: return this.len(4);
      case 0xcf: return small(this.uint(8));
      case 0xd0: return small(BigInt.asIntN(8, this.uint(1)));
      case 0xd1: return small(BigInt.asIntN(16, this.uint(2)));
      case 0xd2: return small(BigInt.asIntN(32, this.uint(4)));
      case 0xd3: return small(BigInt.asIntN(64, this.uint(8)));
      case 0xd9: return this.str(this.len(1));
      case 0xda: return this.str(this.len(2));
      case 0xdb: return this.str(this.len(4));
      case 0xdc: return this.array(this.len(2), depth);
      case 0xdd: return this.array(this.len(4), depth);
      default: throw new DecodeError(`type 0x${t.toString(16)} is not allowed (float, map, ext or reserved)`);
    }
  }
}

function small(v) { // a Number where exact, else the BigInt
  return v >= -BigInt(TWO53) && v <= BigInt(TWO53) ? Number(v) : v;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Decode canonical bytes; throws DecodeError for anything else (§2.2). */
export function decode(bytes, maxSize = Infinity) {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('expected bytes');
  if (bytes.length === 0) throw new DecodeError('empty input');
  if (bytes.length > maxSize) throw new DecodeError(`larger than ${maxSize} bytes`);
  const r = new Reader(bytes);
  const value = r.value(0);
  if (r.pos !== bytes.length) throw new DecodeError('trailing bytes');
  if (!equalBytes(encode(value), bytes)) throw new DecodeError('not the canonical encoding');
  return value;
}
