/**
 * The frame: hakobu's one unit on the wire. A 16-byte header (magic, type,
 * channel, round, payload length, CRC-32) followed by the payload. See
 * `docs/wire-format.md` for the specification and a golden frame.
 *
 * @module
 */

import { crc32 } from "./_crc32.ts";
import { WireError } from "../errors.ts";

/** The two magic bytes `"HK"` (0x48 0x4B) read as a little-endian u16. */
export const MAGIC = 0x4b48;

/** Bytes of a frame header. */
export const HEADER_BYTES = 16;

/** Largest payload a frame may declare (32 MiB); checked before anything is allocated. */
export const MAX_PAYLOAD: number = 32 * 1024 * 1024;

/** Largest JSON payload (64 KiB) any JSON message may have. */
export const MAX_JSON_PAYLOAD: number = 64 * 1024;

/**
 * Frame types. `as const` object rather than a TypeScript `enum`, so the
 * values are plain numbers on the wire and in tests.
 *
 * Every other type (0, 3, 13..19, 30, 31, 34..50, 54..255) is unknown and a reader
 * refuses it; 3 was protocol 1's PAGES frame.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FrameType } from "@hakobu/hakobu";
 *
 * assert.equal(FrameType.BATCH, 12);
 * ```
 */
export const FrameType = {
  /** source → receiver, JSON: protocol version, memory size, page size, codecs, channels, stream format. */
  HELLO: 1,
  /** receiver → source, JSON: the handshake is accepted. */
  WELCOME: 2,
  /** source → receiver, JSON, on a channel: that channel's accounting for one finished round. */
  ROUND_END: 4,
  /** source → receiver, JSON: the source is paused and sent its last pages. */
  FINAL: 5,
  /** receiver → source, JSON: every page is applied; the destination could resume. */
  READY: 6,
  /** source → receiver, binary: the source memory's range digests (SHA-256, or the negotiated scheme, per range). */
  END: 7,
  /** receiver → source, JSON: whether the destination digest matched, and which ranges differ. */
  RESULT: 8,
  /** either way, JSON: the sender of this frame failed and stops. */
  ERROR: 9,
  /** source → receiver, JSON: the source gives the migration up. */
  ABORT: 10,
  /** source → receiver, JSON: a codec's options, sent on a channel before the codec's first page there. */
  CODEC: 11,
  /** source → receiver, binary: a batch of pages, one section per codec (`batch.ts`). */
  BATCH: 12,
  /** receiver → source, JSON, after END with a negotiated scheme: ranges that differ, whose page digests it wants. */
  DIGEST_ASK: 22,
  /** source → receiver, binary: the digest of each page of the ranges DIGEST_ASK named. */
  PAGE_DIGESTS: 23,
  /**
   * source → receiver, JSON, the first frame of a new connection instead of
   * HELLO: carry on a resumable session whose connection was lost.
   */
  RESUME: 20,
  /** receiver → source, JSON: the session is resumed; what each channel holds. */
  RESUMED: 21,
  /**
   * source → receiver, JSON, after a verified RESULT (commit protocol,
   * negotiated in HELLO/WELCOME): the destination may take the memory as
   * the VM's; from the moment it sends this the source never resumes its VM.
   */
  COMMIT: 24,
  /** receiver → source, JSON: the destination committed the memory on COMMIT. */
  COMMITTED: 25,
  /**
   * Either way, JSON, stream tunnels with a replayed link: the frame bytes
   * this side holds of its peer's; the receiver's first names the
   * resumable session (`engine/stream/_replay_link.ts`).
   */
  ACK: 26,
  /**
   * source → receiver, JSON, the first frame of a channel connection (per-
   * channel connections, offered in HELLO and granted in WELCOME): this
   * connection carries channel `channel` of the session WELCOME named.
   */
  JOIN: 27,
  /** receiver → source, JSON, on a channel connection: the JOIN is accepted. */
  JOINED: 28,
  /**
   * receiver → source, JSON, before WELCOME and only to a HELLO with
   * `keepAliveMs`: the receiver is alive and still starting (its channel
   * Workers); the source's reply deadline counts from it.
   */
  STARTING: 29,
  /**
   * Stream mode (a hypervisor's stream through the tunnel,
   * `engine/stream/`): the stream minus its page bodies, in order
   * (`records.ts`); the bodies travel in the channels' BATCH frames.
   */
  RECORDS: 32,
  /** Stream mode: the stream ended: its length, pages and XXH3-128 (`stream_end.ts`). */
  STREAM_END: 33,
  /** Stream mode, receiver → source: bytes the destination wrote back (xl's answers). */
  BACK: 51,
  /** Stream mode, receiver → source: the destination closed its output. */
  BACK_END: 52,
  /**
   * Stream mode, receiver → source, when HELLO asked (`progressBytes`): the
   * rebuilt stream's bytes written to the destination so far
   * (`engine/stream/stream_progress.ts`).
   */
  PROGRESS: 53,
} as const;

/** One of the values of {@link FrameType}. */
export type FrameType = typeof FrameType[keyof typeof FrameType];

const TYPE_NAMES: readonly string[] = (() => {
  const names: string[] = [];
  for (const [name, value] of Object.entries(FrameType)) names[value] = name;
  return names;
})();

/**
 * Name of a frame type for messages, e.g. `"BATCH"`; `"type 42"` when unknown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { frameTypeName } from "@hakobu/hakobu";
 *
 * assert.equal(frameTypeName(12), "BATCH");
 * assert.equal(frameTypeName(3), "type 3"); // protocol 1's PAGES: unknown now
 * ```
 */
export function frameTypeName(type: number): string {
  return TYPE_NAMES[type] ?? `type ${type}`;
}

/** Whether `type` is a known {@link FrameType}. */
export function isFrameType(type: number): type is FrameType {
  return TYPE_NAMES[type] !== undefined;
}

/** The decoded fields of a frame header. */
export interface FrameHeader {
  /** Frame type. */
  readonly type: FrameType;
  /**
   * The channel the frame belongs to (byte 3): CODEC, BATCH and ROUND_END
   * name their channel; every other frame uses 0.
   */
  readonly channel: number;
  /** Pre-copy round the frame belongs to; 0 outside rounds. */
  readonly round: number;
  /** Payload bytes that follow the header. */
  readonly length: number;
  /** CRC-32 over header bytes 0..11 then the payload. */
  readonly crc: number;
}

/** A whole frame: its header and payload. */
export interface Frame extends FrameHeader {
  /** The payload (`length` bytes). */
  readonly payload: Uint8Array;
}

function checkRound(round: number): void {
  if (!Number.isInteger(round) || round < 0 || round > 0xffff_ffff) {
    throw new RangeError(
      `Cannot encode frame round "${round}": expected an integer in 0..4294967295`,
    );
  }
}

/**
 * Writes the 16-byte header of a frame carrying `payload` into `out[0..16)`,
 * CRC included. For zero-copy senders: `out` may be the buffer whose bytes
 * from 16 on already hold the payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   decodeFrameHeader,
 *   encodeFrameHeader,
 *   FrameType,
 *   HEADER_BYTES,
 * } from "@hakobu/hakobu";
 *
 * const buf = new Uint8Array(HEADER_BYTES + 3);
 * buf.set([1, 2, 3], HEADER_BYTES);
 * encodeFrameHeader(FrameType.END, 0, buf.subarray(HEADER_BYTES), buf);
 * const h = decodeFrameHeader(buf);
 * assert.equal(h.type, FrameType.END);
 * assert.equal(h.length, 3);
 * ```
 *
 * @param type Frame type.
 * @param round Round number (u32).
 * @param payload The payload the header describes.
 * @param out At least 16 bytes; the header goes at offset 0.
 * @param channel The frame's channel (0..255, default 0).
 * @throws {RangeError} on an unknown type, a round out of u32 range or a payload over {@link MAX_PAYLOAD}.
 */
export function encodeFrameHeader(
  type: FrameType,
  round: number,
  payload: Uint8Array,
  out: Uint8Array,
  channel = 0,
): void {
  if (!isFrameType(type)) {
    throw new RangeError(`Cannot encode frame of unknown type "${type}"`);
  }
  checkRound(round);
  if (!Number.isInteger(channel) || channel < 0 || channel > 255) {
    throw new RangeError(
      `Cannot encode frame channel "${channel}": expected an integer in 0..255`,
    );
  }
  if (payload.length > MAX_PAYLOAD) {
    throw new RangeError(
      `Cannot encode ${
        frameTypeName(type)
      } frame of ${payload.length} bytes: the limit is ${MAX_PAYLOAD}`,
    );
  }
  if (out.length < HEADER_BYTES) {
    throw new RangeError(
      `Cannot encode frame header into ${out.length} bytes: need ${HEADER_BYTES}`,
    );
  }
  const view = new DataView(out.buffer, out.byteOffset, HEADER_BYTES);
  view.setUint16(0, MAGIC, true);
  view.setUint8(2, type);
  view.setUint8(3, channel);
  view.setUint32(4, round, true);
  view.setUint32(8, payload.length, true);
  view.setUint32(12, frameChecksum(out, payload), true);
}

/**
 * Encodes a whole frame (header + payload) into one new buffer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeFrame, FrameType, HEADER_BYTES } from "@hakobu/hakobu";
 *
 * const f = encodeFrame(FrameType.WELCOME, 0, new TextEncoder().encode("{}"));
 * assert.equal(f.length, HEADER_BYTES + 2); // 18
 * ```
 */
export function encodeFrame(
  type: FrameType,
  round: number,
  payload: Uint8Array,
  channel = 0,
): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  out.set(payload, HEADER_BYTES);
  encodeFrameHeader(type, round, payload, out, channel);
  return out;
}

/**
 * Decodes and checks a frame header: magic, type and the payload length
 * bound (the channel is the session's to check). Does not check the CRC (the payload is not read yet): see
 * {@link verifyFrameChecksum}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   decodeFrameHeader,
 *   encodeFrame,
 *   FrameType,
 *   WireError,
 * } from "@hakobu/hakobu";
 *
 * const f = encodeFrame(FrameType.READY, 0, new Uint8Array(2));
 * assert.equal(decodeFrameHeader(f).length, 2);
 * f[0] ^= 0xff; // a damaged magic
 * assert.throws(() => decodeFrameHeader(f), WireError);
 * ```
 *
 * @param bytes At least 16 bytes, the header at offset 0.
 * @param streamOffset Offset of the header in its stream, reported in errors.
 * @throws {WireError} when a check fails; `offset` is the stream offset of the bad field.
 */
export function decodeFrameHeader(
  bytes: Uint8Array,
  streamOffset = 0,
): FrameHeader {
  if (bytes.length < HEADER_BYTES) {
    throw new WireError(
      `Truncated frame header: got ${bytes.length} of ${HEADER_BYTES} bytes`,
      streamOffset + bytes.length,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const magic = view.getUint16(0, true);
  if (magic !== MAGIC) {
    throw new WireError(
      `Bad frame magic "0x${
        hex16(magic)
      }" at offset ${streamOffset}: expected "HK" (0x4b48)`,
      streamOffset,
    );
  }
  const type = view.getUint8(2);
  if (!isFrameType(type)) {
    throw new WireError(
      `Unknown frame type "${type}" at offset ${
        streamOffset + 2
      }: known types are ${
        Object.values(FrameType).toSorted((a, b) => a - b).join(", ")
      }`,
      streamOffset + 2,
    );
  }
  const length = view.getUint32(8, true);
  if (length > MAX_PAYLOAD) {
    throw new WireError(
      `Frame payload length "${length}" at offset ${
        streamOffset + 8
      } is over the limit: at most ${MAX_PAYLOAD} bytes`,
      streamOffset + 8,
    );
  }
  return {
    type,
    channel: view.getUint8(3),
    round: view.getUint32(4, true),
    length,
    crc: view.getUint32(12, true),
  };
}

/**
 * CRC-32 (zlib's) over header bytes 0..11 then the payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   encodeFrame,
 *   frameChecksum,
 *   FrameType,
 *   HEADER_BYTES,
 * } from "@hakobu/hakobu";
 *
 * const f = encodeFrame(FrameType.END, 0, new Uint8Array(32));
 * const sum = frameChecksum(f, f.subarray(HEADER_BYTES));
 * // The header carries it in bytes 12..16:
 * assert.equal(sum, new DataView(f.buffer).getUint32(12, true));
 * ```
 */
export function frameChecksum(header: Uint8Array, payload: Uint8Array): number {
  const crc = crc32(header.subarray(0, 12), 0);
  return payload.length === 0 ? crc : crc32(payload, crc);
}

/**
 * Checks a frame's CRC-32 against the one stored in header bytes 12..15.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   encodeFrame,
 *   FrameType,
 *   HEADER_BYTES,
 *   verifyFrameChecksum,
 *   WireError,
 * } from "@hakobu/hakobu";
 *
 * const f = encodeFrame(FrameType.END, 0, new Uint8Array(32));
 * verifyFrameChecksum(f, f.subarray(HEADER_BYTES)); // no throw
 * f[HEADER_BYTES] = 1; // one payload bit flipped on the way
 * assert.throws(
 *   () => verifyFrameChecksum(f, f.subarray(HEADER_BYTES)),
 *   WireError,
 * );
 * ```
 *
 * @param header The 16 header bytes as received.
 * @param payload The payload as received.
 * @param streamOffset Offset of the header in its stream, reported in errors.
 * @throws {WireError} when the checksum does not match.
 */
export function verifyFrameChecksum(
  header: Uint8Array,
  payload: Uint8Array,
  streamOffset = 0,
): void {
  const view = new DataView(header.buffer, header.byteOffset, HEADER_BYTES);
  const expected = view.getUint32(12, true);
  const actual = frameChecksum(header, payload);
  if (actual !== expected) {
    throw new WireError(
      `Bad checksum in ${
        frameTypeName(view.getUint8(2))
      } frame at offset ${streamOffset}: ` +
        `header says "0x${hex32(expected)}", bytes give 0x${hex32(actual)}`,
      streamOffset + 12,
    );
  }
}

function hex16(n: number): string {
  return n.toString(16).padStart(4, "0");
}

function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}
