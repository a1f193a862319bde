// Manifest verification (src/manifest.ts) against ../shared/spec/segment-manifest.md,
// with manifests signed here by node's own crypto (ECDSA P-256, r || s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { ManifestKeyring, verifyManifest, findSegment, bytesMatch, verifiedChunkPrefix } from '../dist/meshedflow.js';

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const digest = (bytes) => createHash('sha256').update(bytes).digest('base64url');
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const KID = 'k1';
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: KID };
const spki = { kid: 'spki-key', spki: publicKey.export({ format: 'der', type: 'spki' }).toString('base64') };
const NOW_S = 1_800_000_000;
const NOW_MS = NOW_S * 1000;

const seg = (n) => Buffer.alloc(1000 + n, n);
const chunkA = Buffer.alloc(300, 1), chunkB = Buffer.alloc(200, 2);
const cmaf = Buffer.concat([chunkA, chunkB]);

function payload(over = {}) {
  return {
    v: 1, stream: 'pilot', rendition: '720p', playlist: 'index.m3u8', mediaSequence: 10,
    issuedAt: NOW_S - 5, expiresAt: NOW_S + 30,
    init: { uri: 'init.mp4', size: 4, sha256: digest(Buffer.from('init')) },
    segments: [
      { uri: 'seg10.m4s', sn: 10, size: seg(10).length, sha256: digest(seg(10)) },
      { uri: 'seg11.m4s', sn: 11, size: cmaf.length, sha256: digest(cmaf),
        chunks: [{ size: 300, sha256: digest(chunkA) }, { size: 200, sha256: digest(chunkB) }] },
    ],
    ...over,
  };
}

function jws(body, { header = { alg: 'ES256', typ: 'mf-manifest+jws', kid: KID }, key = privateKey, tamper } = {}) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(body))}`;
  let signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  if (tamper) signature = tamper(signature);
  return `${input}.${b64u(signature)}\n`;
}

const keyring = new ManifestKeyring([jwk, spki]);
const joined = { stream: 'pilot', rendition: '720p' };
const verify = (text, now = NOW_MS, expected = joined) => verifyManifest(text, keyring, expected, now);

test('a good manifest verifies (JWK key, and SPKI key by kid)', async () => {
  const r = await verify(jws(payload()));
  assert.equal(r.ok, true, r.reason);
  assert.equal(r.manifest.segments.length, 2);
  const s = await verify(jws(payload(), { header: { alg: 'ES256', typ: 'mf-manifest+jws', kid: 'spki-key' } }));
  assert.equal(s.ok, true, s.reason);
});

test('every untrusted case of spec section 3 step 1 is refused', async () => {
  const cases = [
    [jws(payload(), { header: { alg: 'ES384', kid: KID } }), /alg/],
    [jws(payload(), { header: { alg: 'none', kid: KID } }), /alg/],
    [jws(payload(), { header: { alg: 'ES256', kid: 'nobody' } }), /unknown kid/],
    [jws(payload(), { key: other.privateKey }), /bad signature/],
    [jws(payload(), { tamper: (s) => { const t = Buffer.from(s); t[5] ^= 1; return t; } }), /bad signature/],
    [jws(payload(), { tamper: (s) => Buffer.concat([Buffer.from([0x30]), s]) }), /64 bytes/],
    [jws(payload({ v: 2 })), /v is 2/],
    [jws(payload({ stream: 'other' })), /stream other/],
    [jws(payload({ rendition: '1080p' })), /rendition 1080p/],
    [jws(payload({ expiresAt: NOW_S - 31 })), /expired/],
    [jws(payload({ segments: [{ uri: 'a', sn: 1, size: 3, sha256: 'short' }] })), /bad segment/],
    [jws(payload({ segments: [{ uri: 'a', sn: 1, size: 3, sha256: digest(Buffer.from('abc')), chunks: [{ size: 2, sha256: digest(Buffer.from('ab')) }] }] })), /add up/],
    ['a.b', /compact JWS/],
    ['a!.b.c', /base64url/],
  ];
  for (const [text, reason] of cases) {
    const r = await verify(text);
    assert.equal(r.ok, false, `accepted: ${reason}`);
    assert.match(r.reason, reason);
  }
  // The payload swapped under a valid signature of another one.
  const [h, , s] = jws(payload()).trim().split('.');
  const forged = `${h}.${b64u(JSON.stringify(payload({ segments: [] })))}.${s}`;
  assert.match((await verify(forged)).reason, /bad signature/);
});

test('expiresAt allows 30 s of clock skew, not more', async () => {
  const text = jws(payload({ expiresAt: NOW_S }));
  assert.equal((await verify(text, (NOW_S + 30) * 1000)).ok, true);
  assert.equal((await verify(text, (NOW_S + 31) * 1000)).ok, false);
});

test('segments verify by size and sha256; chunks by their prefix', async () => {
  const { manifest } = await verify(jws(payload()));
  const s10 = findSegment(manifest, 10);
  assert.equal(await bytesMatch(seg(10), s10), true);
  assert.equal(await bytesMatch(seg(10).subarray(1), s10), false);       // truncated
  const bad = Buffer.from(seg(10)); bad[3] ^= 1;
  assert.equal(await bytesMatch(bad, s10), false);                        // corrupted
  assert.equal(findSegment(manifest, 99), undefined);
  assert.equal(findSegment(manifest, 99, 'seg11.m4s').sn, 11);            // VOD: by uri
  const s11 = findSegment(manifest, 11);
  assert.equal(await verifiedChunkPrefix(cmaf.subarray(0, 299), s11), 0);
  assert.equal(await verifiedChunkPrefix(cmaf.subarray(0, 400), s11), 1);
  assert.equal(await verifiedChunkPrefix(cmaf, s11), 2);
  const badChunk = Buffer.from(cmaf); badChunk[350] ^= 1;
  assert.equal(await verifiedChunkPrefix(badChunk, s11), 1);
  assert.equal(await bytesMatch(Buffer.from('init'), manifest.init), true);
});
