// Ed25519 as docs/PROTOCOL.md §4 requires of every branchnet verifier, in the browser.
//
// The signature equation is checked by WebCrypto (SubtleCrypto "Ed25519": RFC 8032,
// cofactorless, S < L) where the browser has it, else by the same cofactorless
// equation in BigInt arithmetic below. On top of RFC 8032, as libsodium does:
//   keys:       canonical y, on the curve, not of small order, in the prime-order subgroup;
//   signatures: exactly 64 bytes, S < L, R (top bit cleared) not one of the seven
//               small-order encodings.
// Only public data is handled here, so variable-time arithmetic is fine.

const P = 2n ** 255n - 19n;
export const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const mod = (a) => { const r = a % P; return r >= 0n ? r : r + P; };

function pow(b, e) {
  let r = 1n;
  b = mod(b);
  while (e > 0n) { if (e & 1n) r = mod(r * b); b = mod(b * b); e >>= 1n; }
  return r;
}
const inv = (a) => pow(a, P - 2n);
const D = mod(-121665n * inv(121666n));
const D2 = mod(2n * D);
const SQRT_M1 = pow(2n, (P - 1n) / 4n);

// Points in extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, xy = T/Z.
const IDENTITY = { X: 0n, Y: 1n, Z: 1n, T: 0n };

function add(p, q) { // RFC 8032 §5.1.4, complete for Ed25519
  const A = mod((p.Y - p.X) * (q.Y - q.X));
  const B = mod((p.Y + p.X) * (q.Y + q.X));
  const C = mod(p.T * D2 * q.T);
  const Dd = mod(2n * p.Z * q.Z);
  const E = B - A, F = Dd - C, G = Dd + C, H = B + A;
  return { X: mod(E * F), Y: mod(G * H), Z: mod(F * G), T: mod(E * H) };
}

function multiply(k, p) {
  let r = IDENTITY;
  for (let q = p; k > 0n; k >>= 1n, q = add(q, q)) if (k & 1n) r = add(r, q);
  return r;
}

const isIdentity = (p) => mod(p.X) === 0n && mod(p.Y - p.Z) === 0n;
const negate = (p) => ({ X: mod(-p.X), Y: p.Y, Z: p.Z, T: mod(-p.T) });

function leToBig(bytes) {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}

function encodePoint(p) {
  const zi = inv(p.Z);
  const x = mod(p.X * zi);
  let y = mod(p.Y * zi);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) { out[i] = Number(y & 0xffn); y >>= 8n; }
  if (x & 1n) out[31] |= 0x80;
  return out;
}

/** RFC 8032 §5.1.3 decoding, or a reason it fails: "non_canonical" or "not_on_curve". */
function decodePoint(bytes) {
  const sign = bytes[31] >> 7;
  const cleared = bytes.slice();
  cleared[31] &= 0x7f;
  const y = leToBig(cleared);
  if (y >= P) return 'non_canonical';
  const y2 = mod(y * y);
  const u = mod(y2 - 1n), v = mod(D * y2 + 1n);
  let x = mod(u * pow(v, 3n) * pow(u * pow(v, 7n), (P - 5n) / 8n));
  const vx2 = mod(v * x * x);
  if (vx2 === mod(-u)) x = mod(x * SQRT_M1);
  else if (vx2 !== u) return 'not_on_curve';
  if (x === 0n && sign === 1) return 'not_on_curve';
  if (Number(x & 1n) !== sign) x = P - x;
  return { X: x, Y: y, Z: 1n, T: mod(x * y) };
}

const BASE = decodePoint(Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 0x58 : 0x66)));

const SMALL_ORDER_R = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

const toHex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');

const keyChecks = new Map(); // hex -> null (valid) or a reason

/** null if `key` passes the four checks of §4, else the reason: "wrong_length",
 * "non_canonical", "not_on_curve", "small_order" or "not_in_prime_order_subgroup". */
export function publicKeyProblem(key) {
  if (!(key instanceof Uint8Array) || key.length !== 32) return 'wrong_length';
  const id = toHex(key);
  if (!keyChecks.has(id)) {
    const A = decodePoint(key);
    let problem = null;
    if (typeof A === 'string') problem = A;
    else if (isIdentity(multiply(8n, A))) problem = 'small_order';
    else if (!isIdentity(multiply(L, A))) problem = 'not_in_prime_order_subgroup';
    keyChecks.set(id, problem);
  }
  return keyChecks.get(id);
}

let backend = 'auto'; // "auto": WebCrypto when the browser has Ed25519, else "js"
const webKeys = new Map();
let webCryptoWorks = null;

/** Force a backend (tests): "auto", "webcrypto" or "js". */
export function setBackend(name) { backend = name; }

async function hasWebCrypto() {
  if (webCryptoWorks === null) {
    try {
      await crypto.subtle.importKey('raw', encodePoint(BASE), { name: 'Ed25519' }, false, ['verify']);
      webCryptoWorks = true;
    } catch (e) { webCryptoWorks = false; }
  }
  return webCryptoWorks;
}

/** Which backend verify() uses now: "webcrypto" or "js". */
export async function activeBackend() {
  if (backend !== 'auto') return backend;
  return (await hasWebCrypto()) ? 'webcrypto' : 'js';
}

async function verifyWebCrypto(key, message, signature) {
  const id = toHex(key);
  if (!webKeys.has(id)) webKeys.set(id, crypto.subtle.importKey('raw', key, { name: 'Ed25519' }, false, ['verify']));
  return crypto.subtle.verify({ name: 'Ed25519' }, await webKeys.get(id), signature, message);
}

async function verifyJs(key, message, signature) {
  const R = signature.subarray(0, 32), S = leToBig(signature.subarray(32));
  const A = decodePoint(key);
  const hashed = new Uint8Array(64 + message.length);
  hashed.set(R); hashed.set(key, 32); hashed.set(message, 64);
  const k = leToBig(new Uint8Array(await crypto.subtle.digest('SHA-512', hashed))) % L;
  const check = add(multiply(S, BASE), multiply(k, negate(A))); // [S]B - [k]A, cofactorless
  const enc = encodePoint(check);
  return enc.every((b, i) => b === R[i]);
}

/** Whether `signature` by `key` over `message` is valid under §4 (never throws for bad input). */
export async function verify(key, message, signature) {
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  if (publicKeyProblem(key) !== null) return false;
  if (leToBig(signature.subarray(32)) >= L) return false;
  const r = signature.slice(0, 32);
  r[31] &= 0x7f;
  if (SMALL_ORDER_R.includes(toHex(r))) return false;
  return (await activeBackend()) === 'webcrypto' ? verifyWebCrypto(key, message, signature) : verifyJs(key, message, signature);
}
