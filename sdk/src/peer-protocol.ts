// The peer protocol: what two viewers say to each other over one WebRTC data
// channel (docs/sdk.md, section "Peer protocol"). Pure: bytes in, messages
// out; no DOM, no clock.
//
// Every frame is
//   u32 length (big endian, the bytes after this field) | u8 version | u8 type | body
// and a data channel message carries whole frames only. The length is
// explicit and checked against the body the type defines: nothing is ever
// guessed from content. Integers are big endian; a string is u8 length then
// UTF-8 bytes from the identifier alphabet [A-Za-z0-9._:-] (the renditions
// of docs/protocol.md section 2).

export const PEER_PROTOCOL_VERSION = 1;
/** Largest frame (length field included) a decoder accepts. */
export const MAX_FRAME_BYTES = 256 * 1024;
/** Largest data payload one DATA frame carries (below SCTP's safe message size). */
export const MAX_DATA_PAYLOAD = 64 * 1024 - 64;
/** Segments one buffer map lists at most. */
export const MAX_MAP_ENTRIES = 4096;
/** `length` in a request meaning "up to the end of the segment". */
export const TO_END = 0xffffffff;

export enum FrameType {
  BufferMap = 1,
  Request = 2,
  Data = 3,
  Cancel = 4,
  Absent = 5,
}

/** One segment a peer holds: `complete` when it holds all of it, verified;
 * otherwise `verifiedChunks` leading CMAF chunks are verified. */
export interface BufferMapEntry {
  sn: number;
  complete: boolean;
  verifiedChunks: number;
}

/** The whole set of segments the sender holds for one rendition (replaces the
 * previous map for that rendition). */
export interface BufferMapMessage {
  type: 'buffer-map';
  rendition: string;
  entries: BufferMapEntry[];
}

/** Asks for bytes [start, start + length) of segment `sn`, or to the end
 * when length is TO_END. */
export interface RequestMessage {
  type: 'request';
  requestId: number;
  rendition: string;
  sn: number;
  start: number;
  length: number;
}

/** Bytes of the segment answering `requestId`, at `offset` in the segment
 * whose whole size is `total`. */
export interface DataMessage {
  type: 'data';
  requestId: number;
  offset: number;
  total: number;
  bytes: Uint8Array;
}

export interface CancelMessage {
  type: 'cancel';
  requestId: number;
}

/** The sender does not have (or will not serve) what `requestId` asked for. */
export interface AbsentMessage {
  type: 'absent';
  requestId: number;
}

export type PeerMessage = BufferMapMessage | RequestMessage | DataMessage | CancelMessage | AbsentMessage;

export class PeerProtocolError extends Error {}

const IDENTIFIER = /^[A-Za-z0-9._:-]{1,128}$/;
const U32_MAX = 0xffffffff;

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > U32_MAX) throw new PeerProtocolError(`${name} is not a u32: ${v}`);
}

function checkRendition(rendition: string): void {
  if (!IDENTIFIER.test(rendition)) throw new PeerProtocolError(`bad rendition ${JSON.stringify(rendition)}`);
}

function frame(type: FrameType, bodyLength: number, fill: (view: DataView, bytes: Uint8Array, at: number) => void): Uint8Array {
  const total = 4 + 2 + bodyLength;
  if (total > MAX_FRAME_BYTES) throw new PeerProtocolError(`frame of ${total} bytes exceeds ${MAX_FRAME_BYTES}`);
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, total - 4);
  bytes[4] = PEER_PROTOCOL_VERSION;
  bytes[5] = type;
  fill(view, bytes, 6);
  return bytes;
}

const encoder = new TextEncoder();

/** Encodes one message as one frame. Throws PeerProtocolError for a message
 * that the protocol cannot carry (a caller bug, never peer input). */
export function encodeMessage(m: PeerMessage): Uint8Array {
  switch (m.type) {
    case 'buffer-map': {
      checkRendition(m.rendition);
      if (m.entries.length > MAX_MAP_ENTRIES) throw new PeerProtocolError(`buffer map of ${m.entries.length} entries`);
      const name = encoder.encode(m.rendition);
      return frame(FrameType.BufferMap, 1 + name.length + 2 + m.entries.length * 7, (view, bytes, at) => {
        bytes[at++] = name.length;
        bytes.set(name, at);
        at += name.length;
        view.setUint16(at, m.entries.length);
        at += 2;
        for (const e of m.entries) {
          checkU32('sn', e.sn);
          if (!Number.isInteger(e.verifiedChunks) || e.verifiedChunks < 0 || e.verifiedChunks > 0xffff)
            throw new PeerProtocolError(`verifiedChunks ${e.verifiedChunks}`);
          view.setUint32(at, e.sn);
          bytes[at + 4] = e.complete ? 1 : 0;
          view.setUint16(at + 5, e.verifiedChunks);
          at += 7;
        }
      });
    }
    case 'request': {
      checkRendition(m.rendition);
      for (const k of ['requestId', 'sn', 'start', 'length'] as const) checkU32(k, m[k]);
      const name = encoder.encode(m.rendition);
      return frame(FrameType.Request, 4 + 1 + name.length + 12, (view, bytes, at) => {
        view.setUint32(at, m.requestId);
        bytes[at + 4] = name.length;
        bytes.set(name, at + 5);
        at += 5 + name.length;
        view.setUint32(at, m.sn);
        view.setUint32(at + 4, m.start);
        view.setUint32(at + 8, m.length);
      });
    }
    case 'data': {
      for (const k of ['requestId', 'offset', 'total'] as const) checkU32(k, m[k]);
      if (m.bytes.length > MAX_DATA_PAYLOAD) throw new PeerProtocolError(`data payload of ${m.bytes.length} bytes`);
      if (m.offset + m.bytes.length > m.total) throw new PeerProtocolError('data beyond the segment total');
      return frame(FrameType.Data, 12 + m.bytes.length, (view, bytes, at) => {
        view.setUint32(at, m.requestId);
        view.setUint32(at + 4, m.offset);
        view.setUint32(at + 8, m.total);
        bytes.set(m.bytes, at + 12);
      });
    }
    case 'cancel':
    case 'absent': {
      checkU32('requestId', m.requestId);
      return frame(m.type === 'cancel' ? FrameType.Cancel : FrameType.Absent, 4, (view, _bytes, at) => {
        view.setUint32(at, m.requestId);
      });
    }
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function decodeBody(type: number, body: Uint8Array): PeerMessage {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const need = (n: number, what: string) => {
    if (body.length !== n) throw new PeerProtocolError(`${what} body of ${body.length} bytes, expected ${n}`);
  };
  const readName = (at: number): [string, number] => {
    if (at >= body.length) throw new PeerProtocolError('truncated rendition');
    const n = body[at];
    if (at + 1 + n > body.length) throw new PeerProtocolError('truncated rendition');
    let s: string;
    try {
      s = decoder.decode(body.subarray(at + 1, at + 1 + n));
    } catch {
      throw new PeerProtocolError('rendition is not UTF-8');
    }
    checkRendition(s);
    return [s, at + 1 + n];
  };
  switch (type) {
    case FrameType.BufferMap: {
      const [rendition, at] = readName(0);
      if (at + 2 > body.length) throw new PeerProtocolError('truncated buffer map');
      const count = view.getUint16(at);
      if (count > MAX_MAP_ENTRIES) throw new PeerProtocolError(`buffer map of ${count} entries`);
      need(at + 2 + count * 7, 'buffer map');
      const entries: BufferMapEntry[] = [];
      let p = at + 2;
      const seen = new Set<number>();
      for (let i = 0; i < count; i++, p += 7) {
        const sn = view.getUint32(p);
        const flags = body[p + 4];
        if (flags > 1) throw new PeerProtocolError(`buffer map flags ${flags}`);
        if (seen.has(sn)) throw new PeerProtocolError(`buffer map lists ${sn} twice`);
        seen.add(sn);
        entries.push({ sn, complete: flags === 1, verifiedChunks: view.getUint16(p + 5) });
      }
      return { type: 'buffer-map', rendition, entries };
    }
    case FrameType.Request: {
      if (body.length < 5) throw new PeerProtocolError('truncated request');
      const requestId = view.getUint32(0);
      const [rendition, at] = readName(4);
      need(at + 12, 'request');
      return { type: 'request', requestId, rendition, sn: view.getUint32(at), start: view.getUint32(at + 4),
               length: view.getUint32(at + 8) };
    }
    case FrameType.Data: {
      if (body.length < 12) throw new PeerProtocolError('truncated data');
      const requestId = view.getUint32(0);
      const offset = view.getUint32(4);
      const total = view.getUint32(8);
      const bytes = body.slice(12);
      if (bytes.length > MAX_DATA_PAYLOAD) throw new PeerProtocolError(`data payload of ${bytes.length} bytes`);
      if (offset + bytes.length > total) throw new PeerProtocolError('data beyond the segment total');
      return { type: 'data', requestId, offset, total, bytes };
    }
    case FrameType.Cancel:
    case FrameType.Absent:
      need(4, type === FrameType.Cancel ? 'cancel' : 'absent');
      return { type: type === FrameType.Cancel ? 'cancel' : 'absent', requestId: view.getUint32(0) };
    default:
      throw new PeerProtocolError(`unknown frame type ${type}`);
  }
}

/** Decodes one data channel message: one or more whole frames. Throws
 * PeerProtocolError on anything malformed (the caller drops that peer): a
 * wrong version, an unknown type, a length that disagrees with the body, a
 * frame cut off, trailing bytes, a frame over MAX_FRAME_BYTES. */
export function decodeMessages(message: Uint8Array): PeerMessage[] {
  const out: PeerMessage[] = [];
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  let at = 0;
  if (message.length === 0) throw new PeerProtocolError('empty message');
  while (at < message.length) {
    if (message.length - at < 6) throw new PeerProtocolError('truncated frame header');
    const length = view.getUint32(at);
    if (length < 2) throw new PeerProtocolError(`frame length ${length}`);
    if (length + 4 > MAX_FRAME_BYTES) throw new PeerProtocolError(`frame of ${length + 4} bytes exceeds ${MAX_FRAME_BYTES}`);
    if (at + 4 + length > message.length) throw new PeerProtocolError('truncated frame');
    const version = message[at + 4];
    if (version !== PEER_PROTOCOL_VERSION) throw new PeerProtocolError(`peer protocol version ${version}`);
    out.push(decodeBody(message[at + 5], message.subarray(at + 6, at + 4 + length)));
    at += 4 + length;
  }
  return out;
}
