// Signed segment manifests (docs/origin.md, "The manifest"): parsing and
// ES256 verification of the `.mfsig` JWS with WebCrypto, and the check of a
// segment's (or a CMAF chunk's) bytes against a trusted manifest. Pure: no
// DOM; the clock is a parameter. Fails closed: anything unexpected makes the
// whole manifest untrusted.

export interface ManifestChunk {
  size: number;
  sha256: string;
}

export interface ManifestSegment {
  uri: string;
  sn: number;
  size: number;
  sha256: string;
  chunks?: ManifestChunk[];
}

export interface ManifestInit {
  uri: string;
  size: number;
  sha256: string;
}

export interface SegmentManifest {
  v: 1;
  stream: string;
  rendition: string;
  playlist: string;
  mediaSequence: number;
  issuedAt: number;
  expiresAt: number;
  init?: ManifestInit;
  segments: ManifestSegment[];
}

/** A public key as the player is configured with: a JWK (with `kid`), or an
 * SPKI DER in base64 with its `kid`. */
export type ManifestKey = (JsonWebKey & { kid: string }) | { kid: string; spki: string };

/** Clock skew allowed on `expiresAt` (docs/origin.md, "Verifying"). */
export const EXPIRY_SKEW_SECONDS = 30;
const MAX_KID_BYTES = 64;

export type ManifestResult = { ok: true; manifest: SegmentManifest } | { ok: false; reason: string };

export function base64urlDecode(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
  const binary = atob(b64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

export function base64urlEncode(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export async function sha256Base64url(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return base64urlEncode(new Uint8Array(digest));
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isDigest = (v: unknown): v is string => typeof v === 'string' && /^[A-Za-z0-9_-]{43}$/.test(v);

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
}

/** Checks the payload's shape (docs/origin.md, "The manifest"); returns why it is not one. */
function payloadProblem(p: Record<string, unknown>): string | null {
  if (p.v !== 1) return `v is ${JSON.stringify(p.v)}, not 1`;
  for (const k of ['stream', 'rendition', 'playlist'])
    if (typeof p[k] !== 'string') return `${k} is not a string`;
  for (const k of ['mediaSequence', 'issuedAt', 'expiresAt']) if (!isCount(p[k])) return `${k} is not an integer`;
  if (p.init !== undefined) {
    const i = p.init;
    if (!isObject(i) || typeof i.uri !== 'string' || !isCount(i.size) || !isDigest(i.sha256)) return 'bad init';
  }
  if (!Array.isArray(p.segments)) return 'segments is not an array';
  for (const s of p.segments) {
    if (!isObject(s) || typeof s.uri !== 'string' || !isCount(s.sn) || !isCount(s.size) || !isDigest(s.sha256))
      return 'bad segment entry';
    if (s.chunks !== undefined) {
      if (!Array.isArray(s.chunks) || s.chunks.length === 0) return `segment ${s.sn}: bad chunks`;
      let sum = 0;
      for (const c of s.chunks) {
        if (!isObject(c) || !isCount(c.size) || !isDigest(c.sha256)) return `segment ${s.sn}: bad chunk`;
        sum += c.size;
      }
      if (sum !== s.size) return `segment ${s.sn}: chunk sizes add up to ${sum}, not ${s.size}`;
    }
  }
  return null;
}

async function importKey(key: ManifestKey): Promise<CryptoKey> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
  if ('spki' in key) {
    const der = base64urlDecode(key.spki.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''));
    if (!der) throw new Error(`key ${key.kid}: spki is not base64`);
    return crypto.subtle.importKey('spki', der as Uint8Array<ArrayBuffer>, algorithm, false, ['verify']);
  }
  const { kid: _kid, ...jwk } = key;
  return crypto.subtle.importKey('jwk', { ...jwk, key_ops: ['verify'] }, algorithm, false, ['verify']);
}

/** The player's keys by `kid`, imported once. */
export class ManifestKeyring {
  private readonly keys = new Map<string, Promise<CryptoKey | null>>();

  constructor(keys: readonly ManifestKey[]) {
    for (const k of keys) {
      if (typeof k.kid !== 'string' || k.kid.length === 0) throw new Error('every manifest key needs a kid');
      this.keys.set(k.kid, importKey(k).catch(() => null));
    }
  }

  get size(): number {
    return this.keys.size;
  }

  async get(kid: string): Promise<CryptoKey | null> {
    return (await this.keys.get(kid)) ?? null;
  }
}

/** Verifies one `.mfsig` file (docs/origin.md, "Verifying", step 1) for the stream and
 * rendition the player joined, at `nowMs` (milliseconds since the epoch). */
export async function verifyManifest(text: string, keyring: ManifestKeyring, expected: { stream: string; rendition: string },
                                     nowMs: number): Promise<ManifestResult> {
  const jws = text.endsWith('\n') ? text.slice(0, -1) : text;
  const parts = jws.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'not a compact JWS' };
  const [h, p, s] = parts;
  const headerBytes = base64urlDecode(h);
  const payloadBytes = base64urlDecode(p);
  const signature = base64urlDecode(s);
  if (!headerBytes || !payloadBytes || !signature) return { ok: false, reason: 'not base64url' };
  const header = parseJson(headerBytes);
  if (!isObject(header)) return { ok: false, reason: 'header is not a JSON object' };
  if (header.alg !== 'ES256') return { ok: false, reason: `alg ${JSON.stringify(header.alg)} is not ES256` };
  if (header.typ !== undefined && header.typ !== 'mf-manifest+jws') return { ok: false, reason: 'wrong typ' };
  if (typeof header.kid !== 'string' || new TextEncoder().encode(header.kid).length > MAX_KID_BYTES)
    return { ok: false, reason: 'bad kid' };
  const key = await keyring.get(header.kid);
  if (!key) return { ok: false, reason: `unknown kid ${header.kid}` };
  if (signature.length !== 64) return { ok: false, reason: 'signature is not 64 bytes (r || s)' };
  const signed = new TextEncoder().encode(`${h}.${p}`);
  const valid = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, signature as Uint8Array<ArrayBuffer>, signed);
  if (!valid) return { ok: false, reason: 'bad signature' };
  const payload = parseJson(payloadBytes);
  if (!isObject(payload)) return { ok: false, reason: 'payload is not a JSON object' };
  const problem = payloadProblem(payload);
  if (problem) return { ok: false, reason: problem };
  const manifest = payload as unknown as SegmentManifest;
  if (manifest.stream !== expected.stream) return { ok: false, reason: `stream ${manifest.stream}, joined ${expected.stream}` };
  if (manifest.rendition !== expected.rendition)
    return { ok: false, reason: `rendition ${manifest.rendition}, joined ${expected.rendition}` };
  if (manifest.expiresAt + EXPIRY_SKEW_SECONDS < nowMs / 1000) return { ok: false, reason: 'expired' };
  return { ok: true, manifest };
}

/** The entry for a media segment: by `sn`, or by `uri` when the manifest is
 * for VOD and the player has no sequence number match. */
export function findSegment(manifest: SegmentManifest, sn: number, uri?: string): ManifestSegment | undefined {
  return manifest.segments.find((s) => s.sn === sn) ?? (uri !== undefined ? manifest.segments.find((s) => s.uri === uri) : undefined);
}

/** docs/origin.md, "Verifying", step 2: length and SHA-256 both match. */
export async function bytesMatch(bytes: Uint8Array, entry: { size: number; sha256: string }): Promise<boolean> {
  if (bytes.length !== entry.size) return false;
  return (await sha256Base64url(bytes)) === entry.sha256;
}

/** How many leading CMAF chunks of `bytes` (a prefix of the segment) are
 * complete and verified against `entry.chunks`. */
export async function verifiedChunkPrefix(bytes: Uint8Array, entry: ManifestSegment): Promise<number> {
  if (!entry.chunks) return 0;
  let at = 0;
  let n = 0;
  for (const c of entry.chunks) {
    if (at + c.size > bytes.length) break;
    if (!(await bytesMatch(bytes.subarray(at, at + c.size), c))) break;
    at += c.size;
    n++;
  }
  return n;
}
