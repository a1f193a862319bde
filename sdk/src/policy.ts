// Policy merge (docs/sdk.md, section "Policy"). Three sources describe how
// much the mesh may do: the SDK's defaults, the edge's effective policy
// (`joined` and `policy`, docs/protocol.md section 6) and the
// operator's remote config JSON (`remoteConfigUrl`, its `defaults` then its
// `streams[streamId]` override). The one rule: for every field, the most
// restrictive value any source gives wins. So any source can switch the mesh
// off (`meshEnabled: false`), lower peer counts, caps and timeouts, or step
// CMAF down; no source can widen what another one narrowed.

export type CmafMode = 'off' | 'advertise-only' | 'on';

export interface Policy {
  meshEnabled: boolean;
  maxPeers: number;
  /** Upload cap in kbit/s; 0 means none. */
  uploadCapKbps: number;
  cmafMode: CmafMode;
  offerTimeoutMs: number;
  /** How long a peer may take to start answering a request. */
  peerRequestTimeoutMs: number;
}

export const DEFAULT_POLICY: Readonly<Policy> = Object.freeze({
  meshEnabled: true,
  maxPeers: 8,
  uploadCapKbps: 0,
  cmafMode: 'on',
  offerTimeoutMs: 10000,
  peerRequestTimeoutMs: 2000,
});

/** What one source may say: any subset of the fields; unknown fields and
 * values of the wrong type are ignored (a source cannot break the player). */
export type PolicySource = Partial<Policy>;

const CMAF_ORDER: CmafMode[] = ['off', 'advertise-only', 'on'];

function restrict(into: Policy, source: unknown): void {
  if (typeof source !== 'object' || source === null) return;
  const s = source as Record<string, unknown>;
  if (s.meshEnabled === false) into.meshEnabled = false;
  const count = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (count(s.maxPeers)) into.maxPeers = Math.min(into.maxPeers, s.maxPeers);
  if (count(s.uploadCapKbps) && s.uploadCapKbps > 0)
    into.uploadCapKbps = into.uploadCapKbps === 0 ? s.uploadCapKbps : Math.min(into.uploadCapKbps, s.uploadCapKbps);
  if (typeof s.cmafMode === 'string' && CMAF_ORDER.includes(s.cmafMode as CmafMode))
    into.cmafMode = CMAF_ORDER[Math.min(CMAF_ORDER.indexOf(into.cmafMode), CMAF_ORDER.indexOf(s.cmafMode as CmafMode))];
  for (const k of ['offerTimeoutMs', 'peerRequestTimeoutMs'] as const)
    if (count(s[k]) && s[k] > 0) into[k] = Math.min(into[k], s[k] as number);
}

/** The remote config document: `{ "defaults": {...}, "streams": { "<streamId>": {...} } }`. */
export interface RemoteConfig {
  defaults?: PolicySource;
  streams?: Record<string, PolicySource>;
}

/** Merges by the rule above. `local` is what the player was constructed
 * with (it restricts too), `edge` the edge's last policy, `remote` the last
 * remote config fetched (null while none). `base` replaces the SDK's
 * defaults only in tests (`testHooks.policyBase`). */
export function mergePolicy(streamId: string, local: PolicySource | undefined, edge: unknown, remote: unknown,
                            base: Readonly<Policy> = DEFAULT_POLICY): Policy {
  const out: Policy = { ...base };
  restrict(out, local);
  restrict(out, edge);
  if (typeof remote === 'object' && remote !== null) {
    const r = remote as Record<string, unknown>;
    restrict(out, r.defaults);
    const streams = r.streams;
    if (typeof streams === 'object' && streams !== null && Object.hasOwn(streams, streamId))
      restrict(out, (streams as Record<string, unknown>)[streamId]);
  }
  return out;
}
