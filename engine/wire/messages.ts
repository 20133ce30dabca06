/**
 * The typed messages of the wire protocol: for each frame type, its payload
 * shape, one encoder and one decoder beside each other. Decoders check sizes,
 * field types and bounds before anything else and throw {@link WireError}
 * naming the message and the field. Unknown extra JSON fields are ignored, so
 * a later protocol can add fields.
 *
 * Encoders return the payload only; frame it with {@link FrameWriter.write}
 * or {@link encodeFrame}.
 *
 * @module
 */

import { WireError } from "../errors.ts";
import { MAX_CHANNELS } from "../plan.ts";
import { MAX_JSON_PAYLOAD } from "./frame.ts";
import { peerText } from "./peer_text.ts";

/** Protocol version this implementation speaks. */
export const PROTOCOL_VERSION = 2;

/** Bytes of one SHA-256 digest. */
export const DIGEST_BYTES = 32;

/** Bytes before the range digests of an END payload. */
export const END_HEADER_BYTES = 16;

/** Most range digests an END may carry (64 TiB of 64 MiB ranges). */
export const MAX_DIGEST_RANGES = 1 << 20;

/** Most mismatched ranges a RESULT names, and most ranges a DIGEST_ASK asks about. */
export const MAX_MISMATCHES = 64;

/** Most mismatched pages a RESULT names. */
export const MAX_MISMATCHED_PAGES = 256;

/** Most verification schemes a HELLO may offer. */
export const MAX_VERIFY_SCHEMES = 8;

/** Bytes before the range indexes of a PAGE_DIGESTS payload. */
export const PAGE_DIGESTS_HEADER_BYTES = 8;

/** Largest PAGE_DIGESTS payload: {@link MAX_MISMATCHES} ranges of 256 pages of 16-byte digests, and their indexes (a receiver also checks the exact size it expects). */
export const MAX_PAGE_DIGESTS_PAYLOAD: number = 8 + 64 * 4 + 64 * 256 * 16;

/** Longest `vm`, `policy`, `message` or `reason` string, in UTF-16 code units. */
export const MAX_TEXT = 4096;

/** Most codecs a HELLO may list. */
export const MAX_CODECS = 256;

/** Longest grace a HELLO may ask a session to be kept after a lost connection: a day, in milliseconds. */
export const MAX_RESUME_MS = 86_400_000;
/** Largest `progressBytes` a HELLO may ask for (1 GiB). */
export const MAX_PROGRESS_BYTES = 1 << 30;

const U32_MAX = 0xffff_ffff;

/** A codec as named in the handshake. */
export interface CodecRef {
  /** Wire id (0..255). */
  readonly id: number;
  /** Registry name, e.g. `"zero"`. */
  readonly name: string;
}

/** HELLO (source → receiver): what is about to be migrated and how. */
export interface Hello {
  /** Protocol version; the receiver accepts 2. */
  readonly protocol: number;
  /** Bytes of guest memory; a positive multiple of `pageSize`. */
  readonly memoryBytes: number;
  /** Page size in bytes; the receiver accepts 4096. */
  readonly pageSize: number;
  /** Every codec the source may use in BATCH sections. */
  readonly codecs: readonly CodecRef[];
  /** Description of the VM, for the receiver's logs. */
  readonly vm: string;
  /** Name of the policy, for the receiver's logs. */
  readonly policy: string;
  /** Channels (1..{@link MAX_CHANNELS}): frames carry their channel in header byte 3. */
  readonly channels: number;
  /**
   * Stream mode: the hypervisor stream's format (`"qemu"`, `"xen"`) the
   * session rebuilds; absent for a native migration into memory.
   */
  readonly stream?: string;
  /**
   * Asks for a resumable session: the most milliseconds the receiver should
   * keep the session after its connection is lost before FINAL, waiting
   * for a RESUME (absent: not resumable).
   */
  readonly resumeMs?: number;
  /**
   * Verification schemes the source can hash memory with, preferred first
   * (`"xxh3-128"`, `"sha256"`); absent: protocol 2's END (SHA-256 per
   * 64 MiB range) and no page comparison.
   */
  readonly verify?: readonly string[];
  /**
   * The source offers the commit protocol: after a verified RESULT it sends
   * COMMIT, and the receiver takes the memory as the VM's only then
   * (absent: the receiver commits when it sends a verified RESULT).
   */
  readonly commit?: boolean;
  /**
   * The source offers per-channel connections: each channel on a
   * connection of its own, which its encode Worker opens and writes (absent:
   * every channel inside this connection).
   */
  readonly channelConnections?: boolean;
  /**
   * Stream mode: the source asks for a PROGRESS frame at least every this
   * many stream bytes the receiver writes to the destination (it bounds how
   * far it reads ahead by them); absent: none.
   */
  readonly progressBytes?: number;
  /**
   * The source's wish for STARTING frames (1..{@link MAX_RESUME_MS}): while
   * the receiver starts what it needs before WELCOME (its channel Workers,
   * with per-channel connections), it sends one at least this often, and
   * the source's reply deadline counts from the last one. Absent: the
   * receiver sends none, as a receiver from before them.
   */
  readonly keepAliveMs?: number;
}

/**
 * STARTING (receiver → source, before WELCOME, only to a HELLO with
 * `keepAliveMs`): the receiver is alive and still starting.
 */
export interface Starting {
  /** Milliseconds since the receiver began starting (for the source's logs). */
  readonly elapsedMs: number;
}

/** WELCOME (receiver → source): the handshake is accepted. */
export interface Welcome {
  /** Protocol version the receiver speaks. */
  readonly protocol: number;
  /** Always true (a refusal is an ERROR frame). */
  readonly accepted: boolean;
  /**
   * The session is resumable: its id, 32 lower-case hex digits (128 random
   * bits), which a RESUME names. Absent when HELLO did not ask, or the
   * receiver does not resume sessions.
   */
  readonly session?: string;
  /** With `session`: the milliseconds the receiver keeps the session after a lost connection (at most HELLO's `resumeMs`). */
  readonly resumeMs?: number;
  /**
   * The verification scheme the receiver chose from HELLO's `verify`: END
   * then carries digests of this scheme, and a mismatch is narrowed to
   * pages (DIGEST_ASK, PAGE_DIGESTS). Absent: protocol 2's END only.
   */
  readonly verify?: string;
  /**
   * The receiver takes the commit protocol HELLO offered: it commits only
   * on COMMIT and answers COMMITTED (absent: it commits at RESULT).
   */
  readonly commit?: boolean;
  /**
   * The receiver takes the per-channel connections HELLO offered: channel
   * `c` connects to `ports[c]` of the host the source dialled, passes the
   * same security handshake, and sends JOIN with `session` and `token`.
   * Absent: every channel stays inside this connection.
   */
  readonly channelJoin?: ChannelJoin;
}

/** WELCOME's `channelJoin`: where and how each channel's connection joins the session. */
export interface ChannelJoin {
  /** The session's channel id, 32 lower-case hex digits. */
  readonly session: string;
  /** A secret of the session, 32 lower-case hex digits (128 random bits), that each JOIN must carry. */
  readonly token: string;
  /** The port each channel connects to, one per channel of HELLO. */
  readonly ports: readonly number[];
}

/**
 * JOIN (source → receiver, the first frame of a channel connection): this
 * connection carries channel `channel` of the session WELCOME's
 * `channelJoin` named.
 */
export interface Join {
  /** WELCOME's `channelJoin.session`. */
  readonly session: string;
  /** WELCOME's `channelJoin.token`. */
  readonly token: string;
  /** The channel this connection carries. */
  readonly channel: number;
}

/** JOINED (receiver → source, on a channel connection): the JOIN is accepted. */
export interface Joined {
  /** The channel joined. */
  readonly channel: number;
}

/**
 * RESUME (source → receiver, the first frame of a new connection instead of
 * HELLO): carry on the session a lost connection left, from where the
 * receiver holds it.
 */
export interface Resume {
  /** The session id WELCOME gave (a stream tunnel: its first ACK). */
  readonly session: string;
  /**
   * Stream tunnels (a replayed link, `engine/stream/resume_link.ts`): bytes
   * of whole frames the source read from the receiver in the session, every
   * connection together; the receiver sends again what follows.
   */
  readonly received?: number;
}

/**
 * RESUMED (receiver → source): the session is carried on over this
 * connection. The receiver applied, on each channel, the first
 * `channelPages[c]` pages that channel carried in the session (every
 * connection together, in the channel's order); anything after was lost
 * with the connection. Codec state starts afresh on both sides: each
 * channel's next codec use is announced by a new CODEC frame.
 */
export interface Resumed {
  /**
   * Pages applied per channel, in the channel's order; one entry per
   * channel of HELLO (empty for a stream tunnel's replayed link, which
   * says `received` instead).
   */
  readonly channelPages: readonly number[];
  /**
   * Stream tunnels: bytes of whole frames the receiver read from the source
   * in the session, every connection together; the source sends again what
   * follows, byte for byte.
   */
  readonly received?: number;
  /**
   * The verified RESULT the session sent and waits for COMMIT on (commit
   * protocol; absent while the session is in pre-copy): a source that lost
   * RESULT, or COMMITTED, learns the verdict here.
   */
  readonly result?: Result;
  /**
   * A session whose channels have connections of their own (WELCOME's
   * `channelJoin`): where each channel joins again, with a fresh token
   * (the lost connections' token is void).
   */
  readonly channelJoin?: ChannelJoin;
}

/**
 * ACK (either way, stream tunnels with a replayed link,
 * `engine/stream/resume_link.ts`): the sender of this frame holds the
 * first `received` bytes of whole frames its peer sent in the session, so
 * the peer may drop them from what it keeps for a resend. The receiver's
 * first ACK also makes the link resumable: it names the session a RESUME
 * must name and how long the receiver waits for one.
 */
export interface Ack {
  /** Frame bytes held, from the session's start (ACK frames not counted). */
  readonly received: number;
  /** The first ACK of a resumable link: the session id, 32 lower-case hex digits. */
  readonly session?: string;
  /** With `session`: how long the receiver keeps the session after a lost connection, ms. */
  readonly resumeMs?: number;
}

/**
 * COMMIT (source → receiver, commit protocol): the source accepts the
 * verified RESULT and gives the VM to the destination; from the moment it
 * sends COMMIT it never resumes its own copy.
 */
export interface Commit {
  /** The whole digest RESULT gave (and the source's own), hex. */
  readonly digest: string;
}

/** COMMITTED (receiver → source, commit protocol): the memory is committed. */
export interface Committed {
  /** The whole digest of what was committed, hex. */
  readonly digest: string;
}

/**
 * ROUND_END (source → receiver, on a channel): that channel's accounting
 * for one round; the round has ended once every channel sent its own.
 */
export interface RoundEnd {
  /** The round that ended; equals the frame header's round. */
  readonly round: number;
  /** Pages the channel sent in the round. */
  readonly pages: number;
  /** Bytes of those pages before encoding. */
  readonly rawBytes: number;
  /** Frame bytes the channel's CODEC and BATCH frames of the round put on the wire. */
  readonly wireBytes: number;
  /**
   * The channel's last round (stop-and-copy): on a channel connection,
   * nothing follows it (absent: false).
   */
  readonly final?: boolean;
}

/** FINAL (source → receiver): the source is paused and sent its last pages. */
export interface Final {
  /** The last round; equals the frame header's round. */
  readonly round: number;
  /** Pages the source sent in all BATCH frames of the session, every channel together. */
  readonly pagesTotal: number;
}

/** READY (receiver → source): every page is applied; downtime ends here. */
export interface Ready {
  /** Pages the receiver applied, every channel together. */
  readonly pagesApplied: number;
}

/** RESULT (receiver → source): the verdict of the digest comparison. */
export interface Result {
  /** Whether the destination's digest equals the source's. */
  readonly verified: boolean;
  /**
   * The destination's whole digest, lower-case hex: 64 digits (memory), or
   * 32 (stream mode: the rebuilt stream's XXH3-128).
   */
  readonly digest: string;
  /** Pages the receiver applied (stream mode: page bodies rebuilt). */
  readonly pagesApplied: number;
  /** Indexes of the digest ranges that differ (at most {@link MAX_MISMATCHES}; empty when verified). */
  readonly mismatched?: readonly number[];
  /** How many ranges differ in all (`mismatched` lists the first ones). */
  readonly differingRanges?: number;
  /**
   * The pages that differ, from the page comparison of the listed ranges
   * (at most {@link MAX_MISMATCHED_PAGES}; absent without a negotiated
   * scheme).
   */
  readonly mismatchedPages?: readonly number[];
  /** How many pages of the listed ranges differ in all. */
  readonly differingPages?: number;
}

/**
 * DIGEST_ASK (receiver → source, after END, only with a negotiated
 * verification scheme): some ranges differ; send the digest of each page
 * of these.
 */
export interface DigestAsk {
  /** Range indexes, strictly increasing, 1..{@link MAX_MISMATCHES} of them. */
  readonly ranges: readonly number[];
}

/** PAGE_DIGESTS (source → receiver): the answer to DIGEST_ASK. */
export interface PageDigests {
  /** The ranges asked about, in the same order. */
  readonly ranges: readonly number[];
  /** Bytes of each digest (16 for `"xxh3-128"`, 32 for `"sha256"`). */
  readonly digestBytes: number;
  /** One digest per page of each range, range after range. */
  readonly digests: Uint8Array;
}

/**
 * END (source → receiver): the source's memory digest, as one SHA-256 per
 * range of `rangeBytes` (the last range may be shorter); the whole digest is
 * the SHA-256 of the range digests one after the other.
 */
export interface End {
  /** Bytes per range, a positive multiple of 4096. */
  readonly rangeBytes: number;
  /** The range digests (32 bytes each, or the negotiated scheme's size), in memory order. */
  readonly ranges: Uint8Array;
}

/** ERROR (either way): the sender of the frame failed and stops. */
export interface ErrorMessage {
  /** What went wrong. */
  readonly message: string;
  /**
   * Commit protocol: the receiver discarded the session's memory and will
   * never commit it (a failed session, or a RESUME of one that ended
   * without COMMIT), so the source may resume its VM. Absent: not said.
   */
  readonly discarded?: boolean;
}

/** ABORT (source → receiver): the source gives the migration up. */
export interface Abort {
  /** Why. */
  readonly reason: string;
}

/**
 * CODEC (source → receiver, on a channel): a codec the channel starts
 * using, with its options. Sent before the channel's first BATCH with a
 * section of that codec; the receiver creates the channel's decoder of the
 * codec at this point of the channel's frames, so stateful codecs start
 * from the same state on both sides.
 */
export interface CodecSetup {
  /** Wire id of the codec (must have been negotiated in HELLO). */
  readonly id: number;
  /** Registry name of the codec. */
  readonly name: string;
  /** The codec's options (JSON values only). */
  readonly options: Readonly<Record<string, unknown>>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function encodeJson(what: string, value: unknown): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(value));
  if (bytes.length > MAX_JSON_PAYLOAD) {
    throw new RangeError(
      `Cannot encode ${what}: ${bytes.length} bytes of JSON, the limit is ${MAX_JSON_PAYLOAD}`,
    );
  }
  return bytes;
}

function decodeJson(
  what: string,
  payload: Uint8Array,
): Record<string, unknown> {
  if (payload.length > MAX_JSON_PAYLOAD) {
    throw new WireError(
      `Cannot decode ${what}: payload of ${payload.length} bytes is over the ${MAX_JSON_PAYLOAD}-byte JSON limit`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(payload));
  } catch (e) {
    throw new WireError(
      `Cannot decode ${what}: payload is not UTF-8 JSON: ${
        (e as Error).message
      }`,
      undefined,
      { cause: e },
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new WireError(`Cannot decode ${what}: payload must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

function uint(
  what: string,
  obj: Record<string, unknown>,
  field: string,
  max: number,
): number {
  const v = obj[field];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    throw new WireError(
      `Cannot decode ${what}: field "${field}" must be an integer in 0..${max}, got ${
        show(v)
      }`,
    );
  }
  return v;
}

function text(
  what: string,
  obj: Record<string, unknown>,
  field: string,
): string {
  const v = obj[field];
  if (typeof v !== "string" || v.length > MAX_TEXT) {
    throw new WireError(
      `Cannot decode ${what}: field "${field}" must be a string of at most ${MAX_TEXT} characters, got ${
        show(v)
      }`,
    );
  }
  // The peer's words reach logs and terminals: never raw.
  return peerText(v);
}

function bool(
  what: string,
  obj: Record<string, unknown>,
  field: string,
): boolean {
  const v = obj[field];
  if (typeof v !== "boolean") {
    throw new WireError(
      `Cannot decode ${what}: field "${field}" must be a boolean, got ${
        show(v)
      }`,
    );
  }
  return v;
}

/** A session id: 32 lower-case hex digits. */
function sessionId(what: string, obj: Record<string, unknown>): string {
  const v = obj.session;
  if (typeof v !== "string" || !/^[0-9a-f]{32}$/.test(v)) {
    throw new WireError(
      `Cannot decode ${what}: field "session" must be 32 lower-case hex digits, got ${
        show(v)
      }`,
    );
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v) ?? String(v);
  return `"${s.length > 40 ? s.slice(0, 40) + "..." : s}"`;
}

/**
 * Encodes a HELLO payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeHello, encodeHello } from "@hakobu/hakobu";
 *
 * const hello = {
 *   protocol: 2,
 *   memoryBytes: 4096,
 *   pageSize: 4096,
 *   codecs: [{ id: 0, name: "raw" }],
 *   vm: "sim",
 *   policy: "plain",
 *   channels: 1,
 * };
 * const payload = encodeHello(hello); // JSON
 * assert.equal(JSON.parse(new TextDecoder().decode(payload)).vm, "sim");
 * assert.deepEqual(decodeHello(payload), hello);
 * ```
 */
export function encodeHello(hello: Hello): Uint8Array {
  return encodeJson("HELLO", {
    protocol: hello.protocol,
    memoryBytes: hello.memoryBytes,
    pageSize: hello.pageSize,
    codecs: hello.codecs.map((c) => ({ id: c.id, name: c.name })),
    vm: hello.vm,
    policy: hello.policy,
    channels: hello.channels,
    ...(hello.stream ? { stream: hello.stream } : {}),
    ...(hello.resumeMs === undefined ? {} : { resumeMs: hello.resumeMs }),
    ...(hello.verify ? { verify: hello.verify } : {}),
    ...(hello.commit ? { commit: true } : {}),
    ...(hello.channelConnections ? { channelConnections: true } : {}),
    ...(hello.progressBytes === undefined
      ? {}
      : { progressBytes: hello.progressBytes }),
    ...(hello.keepAliveMs === undefined
      ? {}
      : { keepAliveMs: hello.keepAliveMs }),
  });
}

/**
 * Decodes a HELLO payload, checking field types and bounds. Whether the
 * values are acceptable (version, page size, memory limit, known codecs) is
 * the receiver's decision.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeHello, encodeHello } from "@hakobu/hakobu";
 *
 * const hello = {
 *   protocol: 2,
 *   memoryBytes: 8192,
 *   pageSize: 4096,
 *   codecs: [{ id: 1, name: "zero" }],
 *   vm: "sim",
 *   policy: "plain",
 *   channels: 2,
 * };
 * assert.equal(decodeHello(encodeHello(hello)).channels, 2);
 * const bad = new TextEncoder().encode(
 *   JSON.stringify({ ...hello, pageSize: -1 }),
 * );
 * assert.throws(() => decodeHello(bad), /field "pageSize"/);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeHello(payload: Uint8Array): Hello {
  const o = decodeJson("HELLO", payload);
  const protocol = uint("HELLO", o, "protocol", U32_MAX);
  const memoryBytes = uint("HELLO", o, "memoryBytes", Number.MAX_SAFE_INTEGER);
  const pageSize = uint("HELLO", o, "pageSize", U32_MAX);
  const list = o.codecs;
  if (!Array.isArray(list) || list.length > MAX_CODECS) {
    throw new WireError(
      `Cannot decode HELLO: field "codecs" must be an array of at most ${MAX_CODECS} codecs, got ${
        show(list)
      }`,
    );
  }
  const codecs: CodecRef[] = list.map((c: unknown, i: number) => {
    const where = `HELLO codecs[${i}]`;
    if (typeof c !== "object" || c === null || Array.isArray(c)) {
      throw new WireError(
        `Cannot decode ${where}: must be an object {id, name}, got ${show(c)}`,
      );
    }
    const r = c as Record<string, unknown>;
    return { id: uint(where, r, "id", 255), name: text(where, r, "name") };
  });
  return {
    protocol,
    memoryBytes,
    pageSize,
    codecs,
    vm: text("HELLO", o, "vm"),
    policy: text("HELLO", o, "policy"),
    channels: o.channels === undefined
      ? 1
      : uint("HELLO", o, "channels", MAX_CHANNELS),
    ...(o.stream === undefined ? {} : { stream: text("HELLO", o, "stream") }),
    ...(o.resumeMs === undefined
      ? {}
      : { resumeMs: uint("HELLO", o, "resumeMs", MAX_RESUME_MS) }),
    ...(o.verify === undefined ? {} : { verify: schemes(o.verify) }),
    ...(o.commit === undefined ? {} : { commit: bool("HELLO", o, "commit") }),
    ...(o.channelConnections === undefined ? {} : {
      channelConnections: bool("HELLO", o, "channelConnections"),
    }),
    ...(o.progressBytes === undefined ? {} : {
      progressBytes: positive("HELLO", o, "progressBytes", MAX_PROGRESS_BYTES),
    }),
    ...(o.keepAliveMs === undefined ? {} : {
      keepAliveMs: positive("HELLO", o, "keepAliveMs", MAX_RESUME_MS),
    }),
  };
}

/** Field `name` of `o`: a whole number from 1 to `max`. */
function positive(
  what: string,
  o: Record<string, unknown>,
  name: string,
  max: number,
): number {
  const v = uint(what, o, name, max);
  if (v === 0) {
    throw new WireError(
      `Cannot decode ${what}: field "${name}" must be an integer in 1..${max}, got 0`,
    );
  }
  return v;
}

/**
 * Encodes a STARTING payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeStarting, encodeStarting } from "@hakobu/hakobu";
 *
 * assert.deepEqual(decodeStarting(encodeStarting({ elapsedMs: 1500 })), {
 *   elapsedMs: 1500,
 * });
 * ```
 */
export function encodeStarting(starting: Starting): Uint8Array {
  return encodeJson("STARTING", { elapsedMs: starting.elapsedMs });
}

/**
 * Decodes a STARTING payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeStarting } from "@hakobu/hakobu";
 *
 * const bad = new TextEncoder().encode(JSON.stringify({ elapsedMs: -1 }));
 * assert.throws(() => decodeStarting(bad), /field "elapsedMs"/);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeStarting(payload: Uint8Array): Starting {
  const o = decodeJson("STARTING", payload);
  return {
    elapsedMs: uint("STARTING", o, "elapsedMs", Number.MAX_SAFE_INTEGER),
  };
}

/** HELLO's `verify`: a short list of short names. */
function schemes(v: unknown): string[] {
  if (
    !Array.isArray(v) || v.length > MAX_VERIFY_SCHEMES ||
    !v.every((s) => typeof s === "string" && s.length <= 32)
  ) {
    throw new WireError(
      `Cannot decode HELLO: field "verify" must be an array of at most ${MAX_VERIFY_SCHEMES} names of at most 32 characters, got ${
        show(v)
      }`,
    );
  }
  return v.map((s) => peerText(s));
}

/**
 * Encodes a WELCOME payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeWelcome } from "@hakobu/hakobu";
 *
 * const payload = encodeWelcome({ protocol: 2, accepted: true });
 * assert.deepEqual(JSON.parse(new TextDecoder().decode(payload)), {
 *   protocol: 2,
 *   accepted: true,
 * });
 * ```
 */
export function encodeWelcome(welcome: Welcome): Uint8Array {
  return encodeJson("WELCOME", {
    protocol: welcome.protocol,
    accepted: welcome.accepted,
    ...(welcome.session === undefined
      ? {}
      : { session: welcome.session, resumeMs: welcome.resumeMs ?? 0 }),
    ...(welcome.verify ? { verify: welcome.verify } : {}),
    ...(welcome.commit ? { commit: true } : {}),
    ...(welcome.channelJoin
      ? {
        channelJoin: {
          session: welcome.channelJoin.session,
          token: welcome.channelJoin.token,
          ports: welcome.channelJoin.ports,
        },
      }
      : {}),
  });
}

/**
 * Decodes a WELCOME payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeWelcome, encodeWelcome } from "@hakobu/hakobu";
 *
 * const welcome = decodeWelcome(
 *   encodeWelcome({ protocol: 2, accepted: true }),
 * );
 * assert.equal(welcome.accepted, true);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeWelcome(payload: Uint8Array): Welcome {
  const o = decodeJson("WELCOME", payload);
  return {
    protocol: uint("WELCOME", o, "protocol", U32_MAX),
    accepted: bool("WELCOME", o, "accepted"),
    ...(o.session === undefined ? {} : {
      session: sessionId("WELCOME", o),
      resumeMs: uint("WELCOME", o, "resumeMs", MAX_RESUME_MS),
    }),
    ...(o.verify === undefined ? {} : { verify: text("WELCOME", o, "verify") }),
    ...(o.commit === undefined ? {} : { commit: bool("WELCOME", o, "commit") }),
    ...(o.channelJoin === undefined
      ? {}
      : { channelJoin: channelJoin(o.channelJoin) }),
  };
}

/** WELCOME's (or RESUMED's) `channelJoin`: a session id, a token and 1..64 ports. */
function channelJoin(v: unknown, frame = "WELCOME"): ChannelJoin {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new WireError(
      `Cannot decode ${frame}: field "channelJoin" must be an object {session, token, ports}, got ${
        show(v)
      }`,
    );
  }
  const o = v as Record<string, unknown>;
  const ports = o.ports;
  if (
    !Array.isArray(ports) || ports.length < 1 ||
    ports.length > MAX_CHANNELS ||
    !ports.every((p) => Number.isInteger(p) && p >= 1 && p <= 65535)
  ) {
    throw new WireError(
      `Cannot decode ${frame}: field "channelJoin.ports" must be 1 to ${MAX_CHANNELS} TCP ports, got ${
        show(ports)
      }`,
    );
  }
  return {
    session: sessionId(`${frame} channelJoin`, o),
    token: hex128(`${frame} channelJoin`, o, "token"),
    ports: ports as number[],
  };
}

/** A 128-bit value as 32 lower-case hex digits. */
function hex128(
  what: string,
  obj: Record<string, unknown>,
  field: string,
): string {
  const v = obj[field];
  if (typeof v !== "string" || !/^[0-9a-f]{32}$/.test(v)) {
    throw new WireError(
      `Cannot decode ${what}: field "${field}" must be 32 lower-case hex digits, got ${
        v === undefined ? "nothing" : "something else (not shown: a secret)"
      }`,
    );
  }
  return v;
}

/**
 * Encodes a JOIN payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeJoin, encodeJoin } from "@hakobu/hakobu";
 *
 * const join = {
 *   session: "0123456789abcdef0123456789abcdef",
 *   token: "fedcba9876543210fedcba9876543210",
 *   channel: 1,
 * };
 * assert.deepEqual(decodeJoin(encodeJoin(join)), join);
 * ```
 */
export function encodeJoin(join: Join): Uint8Array {
  return encodeJson("JOIN", {
    session: join.session,
    token: join.token,
    channel: join.channel,
  });
}

/**
 * Decodes a JOIN payload; a malformed token is refused without echoing it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeJoin } from "@hakobu/hakobu";
 *
 * const bad = new TextEncoder().encode(JSON.stringify({
 *   session: "0123456789abcdef0123456789abcdef",
 *   token: "secret?",
 *   channel: 0,
 * }));
 * assert.throws(() => decodeJoin(bad), /field "token" must be 32 lower-case hex digits, got something else \(not shown/);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeJoin(payload: Uint8Array): Join {
  const o = decodeJson("JOIN", payload);
  return {
    session: sessionId("JOIN", o),
    token: hex128("JOIN", o, "token"),
    channel: uint("JOIN", o, "channel", MAX_CHANNELS - 1),
  };
}

/**
 * Encodes a JOINED payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeJoined, encodeJoined } from "@hakobu/hakobu";
 *
 * assert.deepEqual(decodeJoined(encodeJoined({ channel: 3 })), { channel: 3 });
 * ```
 */
export function encodeJoined(joined: Joined): Uint8Array {
  return encodeJson("JOINED", { channel: joined.channel });
}

/**
 * Decodes a JOINED payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeJoined } from "@hakobu/hakobu";
 *
 * const bad = new TextEncoder().encode(JSON.stringify({ channel: -1 }));
 * assert.throws(() => decodeJoined(bad), /field "channel"/);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeJoined(payload: Uint8Array): Joined {
  const o = decodeJson("JOINED", payload);
  return { channel: uint("JOINED", o, "channel", MAX_CHANNELS - 1) };
}

/**
 * Encodes a ROUND_END payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeRoundEnd, encodeRoundEnd } from "@hakobu/hakobu";
 *
 * const end = { round: 1, pages: 10, rawBytes: 40960, wireBytes: 4200 };
 * assert.deepEqual(decodeRoundEnd(encodeRoundEnd(end)), end);
 * ```
 */
export function encodeRoundEnd(end: RoundEnd): Uint8Array {
  return encodeJson("ROUND_END", {
    round: end.round,
    pages: end.pages,
    rawBytes: end.rawBytes,
    wireBytes: end.wireBytes,
    ...(end.final ? { final: true } : {}),
  });
}

/**
 * Decodes a ROUND_END payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeRoundEnd, encodeRoundEnd } from "@hakobu/hakobu";
 *
 * const end = { round: 1, pages: 10, rawBytes: 40960, wireBytes: 4200 };
 * assert.equal(decodeRoundEnd(encodeRoundEnd(end)).pages, 10);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeRoundEnd(payload: Uint8Array): RoundEnd {
  const o = decodeJson("ROUND_END", payload);
  return {
    round: uint("ROUND_END", o, "round", U32_MAX),
    pages: uint("ROUND_END", o, "pages", Number.MAX_SAFE_INTEGER),
    rawBytes: uint("ROUND_END", o, "rawBytes", Number.MAX_SAFE_INTEGER),
    wireBytes: uint("ROUND_END", o, "wireBytes", Number.MAX_SAFE_INTEGER),
    ...(o.final === undefined ? {} : { final: bool("ROUND_END", o, "final") }),
  };
}

/**
 * Encodes a FINAL payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFinal, encodeFinal } from "@hakobu/hakobu";
 *
 * const final = { round: 5, pagesTotal: 1200 };
 * assert.deepEqual(decodeFinal(encodeFinal(final)), final);
 * ```
 */
export function encodeFinal(final: Final): Uint8Array {
  return encodeJson("FINAL", {
    round: final.round,
    pagesTotal: final.pagesTotal,
  });
}

/**
 * Decodes a FINAL payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFinal, encodeFinal } from "@hakobu/hakobu";
 *
 * assert.equal(
 *   decodeFinal(encodeFinal({ round: 5, pagesTotal: 1200 })).pagesTotal,
 *   1200,
 * );
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeFinal(payload: Uint8Array): Final {
  const o = decodeJson("FINAL", payload);
  return {
    round: uint("FINAL", o, "round", U32_MAX),
    pagesTotal: uint("FINAL", o, "pagesTotal", Number.MAX_SAFE_INTEGER),
  };
}

/**
 * Encodes a READY payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeReady, encodeReady } from "@hakobu/hakobu";
 *
 * assert.deepEqual(decodeReady(encodeReady({ pagesApplied: 1200 })), {
 *   pagesApplied: 1200,
 * });
 * ```
 */
export function encodeReady(ready: Ready): Uint8Array {
  return encodeJson("READY", { pagesApplied: ready.pagesApplied });
}

/**
 * Decodes a READY payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeReady, encodeReady } from "@hakobu/hakobu";
 *
 * assert.equal(decodeReady(encodeReady({ pagesApplied: 3 })).pagesApplied, 3);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeReady(payload: Uint8Array): Ready {
  const o = decodeJson("READY", payload);
  return {
    pagesApplied: uint("READY", o, "pagesApplied", Number.MAX_SAFE_INTEGER),
  };
}

/**
 * Encodes an END payload: `u32 rangeBytes low, u32 rangeBytes high, u32
 * count, u32 reserved 0`, then `count` digests of `digestBytes` each
 * (SHA-256's 32 unless a scheme was negotiated).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeEnd } from "@hakobu/hakobu";
 *
 * const end = encodeEnd({ rangeBytes: 1 << 26, ranges: new Uint8Array(64) });
 * assert.equal(end.length, 16 + 64); // 16 bytes of fields, 2 range digests
 * ```
 */
export function encodeEnd(
  end: End,
  digestBytes: number = DIGEST_BYTES,
): Uint8Array {
  const count = end.ranges.length / digestBytes;
  if (
    !Number.isInteger(count) || count < 1 || count > MAX_DIGEST_RANGES
  ) {
    throw new RangeError(
      `Cannot encode END: ${end.ranges.length} bytes of range digests is not 1..${MAX_DIGEST_RANGES} digests of ${digestBytes} bytes`,
    );
  }
  if (!Number.isSafeInteger(end.rangeBytes) || end.rangeBytes <= 0) {
    throw new RangeError(
      `Cannot encode END: rangeBytes "${end.rangeBytes}" must be a positive integer`,
    );
  }
  const out = new Uint8Array(END_HEADER_BYTES + end.ranges.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, end.rangeBytes % 0x1_0000_0000, true);
  v.setUint32(4, Math.floor(end.rangeBytes / 0x1_0000_0000), true);
  v.setUint32(8, count, true);
  out.set(end.ranges, END_HEADER_BYTES);
  return out;
}

/**
 * Decodes an END payload of `digestBytes`-byte digests (the negotiated
 * scheme's, SHA-256's 32 by default) into a copy of its range digests (the
 * payload may alias a reused buffer).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeEnd, encodeEnd } from "@hakobu/hakobu";
 *
 * const end = { rangeBytes: 4096, ranges: new Uint8Array(32) };
 * assert.equal(decodeEnd(encodeEnd(end)).rangeBytes, 4096);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeEnd(
  payload: Uint8Array,
  digestBytes: number = DIGEST_BYTES,
): End {
  if (payload.length < END_HEADER_BYTES + digestBytes) {
    throw new WireError(
      `Cannot decode END: ${payload.length} bytes is shorter than its header and one digest`,
    );
  }
  const v = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const rangeBytes = v.getUint32(4, true) * 0x1_0000_0000 +
    v.getUint32(0, true);
  const count = v.getUint32(8, true);
  if (v.getUint32(12, true) !== 0) {
    throw new WireError("Cannot decode END: reserved field must be 0", 12);
  }
  if (rangeBytes === 0 || rangeBytes % 4096 !== 0) {
    throw new WireError(
      `Cannot decode END: rangeBytes "${rangeBytes}" must be a positive multiple of 4096`,
      0,
    );
  }
  if (
    count < 1 || count > MAX_DIGEST_RANGES ||
    payload.length !== END_HEADER_BYTES + count * digestBytes
  ) {
    throw new WireError(
      `Cannot decode END: count "${count}" does not match its ${payload.length}-byte payload of ${digestBytes}-byte digests`,
      8,
    );
  }
  return { rangeBytes, ranges: payload.slice(END_HEADER_BYTES) };
}

/**
 * Encodes a RESULT payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeResult, encodeResult } from "@hakobu/hakobu";
 *
 * const result = { verified: true, digest: "ab".repeat(32), pagesApplied: 64 };
 * assert.equal(decodeResult(encodeResult(result)).verified, true);
 * ```
 */
export function encodeResult(result: Result): Uint8Array {
  return encodeJson("RESULT", {
    verified: result.verified,
    digest: result.digest,
    pagesApplied: result.pagesApplied,
    mismatched: (result.mismatched ?? []).slice(0, MAX_MISMATCHES),
    ...(result.differingRanges === undefined
      ? {}
      : { differingRanges: result.differingRanges }),
    ...(result.mismatchedPages === undefined ? {} : {
      mismatchedPages: result.mismatchedPages.slice(0, MAX_MISMATCHED_PAGES),
    }),
    ...(result.differingPages === undefined
      ? {}
      : { differingPages: result.differingPages }),
  });
}

/**
 * Decodes a RESULT payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeResult, encodeResult } from "@hakobu/hakobu";
 *
 * const result = {
 *   verified: false,
 *   digest: "ab".repeat(32),
 *   pagesApplied: 64,
 *   mismatched: [3],
 * };
 * assert.deepEqual(decodeResult(encodeResult(result)).mismatched, [3]);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeResult(payload: Uint8Array): Result {
  const o = decodeJson("RESULT", payload);
  const verified = bool("RESULT", o, "verified");
  const digest = o.digest;
  if (
    typeof digest !== "string" || !/^(?:[0-9a-f]{32}){1,2}$/.test(digest)
  ) {
    throw new WireError(
      `Cannot decode RESULT: field "digest" must be 64 (or, from a stream tunnel, 32) lower-case hex digits, got ${
        show(digest)
      }`,
    );
  }
  const m = o.mismatched ?? [];
  if (
    !Array.isArray(m) || m.length > MAX_MISMATCHES ||
    !m.every((i) => Number.isInteger(i) && i >= 0 && i < MAX_DIGEST_RANGES)
  ) {
    throw new WireError(
      `Cannot decode RESULT: field "mismatched" must be at most ${MAX_MISMATCHES} range indexes, got ${
        show(m)
      }`,
    );
  }
  const pages = o.mismatchedPages;
  if (
    pages !== undefined && (
      !Array.isArray(pages) || pages.length > MAX_MISMATCHED_PAGES ||
      !pages.every((p) => Number.isSafeInteger(p) && p >= 0)
    )
  ) {
    throw new WireError(
      `Cannot decode RESULT: field "mismatchedPages" must be at most ${MAX_MISMATCHED_PAGES} page numbers, got ${
        show(pages)
      }`,
    );
  }
  return {
    verified,
    digest,
    pagesApplied: uint("RESULT", o, "pagesApplied", Number.MAX_SAFE_INTEGER),
    mismatched: m as number[],
    ...(o.differingRanges === undefined ? {} : {
      differingRanges: uint("RESULT", o, "differingRanges", MAX_DIGEST_RANGES),
    }),
    ...(pages === undefined ? {} : { mismatchedPages: pages as number[] }),
    ...(o.differingPages === undefined ? {} : {
      differingPages: uint(
        "RESULT",
        o,
        "differingPages",
        Number.MAX_SAFE_INTEGER,
      ),
    }),
  };
}

/**
 * Encodes a DIGEST_ASK payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeDigestAsk, encodeDigestAsk } from "@hakobu/hakobu";
 *
 * const ask = { ranges: [3, 700] };
 * assert.deepEqual(decodeDigestAsk(encodeDigestAsk(ask)), ask);
 * ```
 */
export function encodeDigestAsk(ask: DigestAsk): Uint8Array {
  return encodeJson("DIGEST_ASK", { ranges: ask.ranges });
}

/**
 * Decodes a DIGEST_ASK payload: 1..{@link MAX_MISMATCHES} range indexes,
 * strictly increasing (a source also checks them against its memory).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeDigestAsk, encodeDigestAsk } from "@hakobu/hakobu";
 *
 * assert.throws(
 *   () => decodeDigestAsk(encodeDigestAsk({ ranges: [5, 5] })),
 *   /strictly increasing/,
 * );
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeDigestAsk(payload: Uint8Array): DigestAsk {
  const o = decodeJson("DIGEST_ASK", payload);
  const r = o.ranges;
  if (
    !Array.isArray(r) || r.length < 1 || r.length > MAX_MISMATCHES ||
    !r.every((v, i) =>
      Number.isInteger(v) && v >= 0 && v < MAX_DIGEST_RANGES &&
      (i === 0 || v > r[i - 1])
    )
  ) {
    throw new WireError(
      `Cannot decode DIGEST_ASK: field "ranges" must be 1 to ${MAX_MISMATCHES} range indexes below ${MAX_DIGEST_RANGES}, strictly increasing, got ${
        show(r)
      }`,
    );
  }
  return { ranges: r as number[] };
}

/**
 * Encodes a PAGE_DIGESTS payload: `u32 count, u32 digestBytes`, `count`
 * u32 range indexes, then the page digests.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePageDigests } from "@hakobu/hakobu";
 *
 * const p = encodePageDigests({
 *   ranges: [2],
 *   digestBytes: 16,
 *   digests: new Uint8Array(2 * 16), // a range of two pages
 * });
 * assert.equal(p.length, 8 + 4 + 32);
 * ```
 */
export function encodePageDigests(p: PageDigests): Uint8Array {
  const n = p.ranges.length;
  const out = new Uint8Array(
    PAGE_DIGESTS_HEADER_BYTES + 4 * n + p.digests.length,
  );
  const v = new DataView(out.buffer);
  v.setUint32(0, n, true);
  v.setUint32(4, p.digestBytes, true);
  p.ranges.forEach((r, i) => v.setUint32(8 + 4 * i, r, true));
  out.set(p.digests, PAGE_DIGESTS_HEADER_BYTES + 4 * n);
  return out;
}

/**
 * Decodes a PAGE_DIGESTS payload into a copy of its digests, refusing one
 * over {@link MAX_PAGE_DIGESTS_PAYLOAD} bytes, with more than
 * {@link MAX_MISMATCHES} ranges, a digest size other than 16 or 32, or
 * digests that are not a whole number of that size. Whether they are the
 * ranges asked for, with one digest per page, is the receiver's check.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodePageDigests, encodePageDigests } from "@hakobu/hakobu";
 *
 * const p = { ranges: [2], digestBytes: 16, digests: new Uint8Array(32) };
 * assert.deepEqual(decodePageDigests(encodePageDigests(p)).ranges, [2]);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodePageDigests(payload: Uint8Array): PageDigests {
  if (payload.length > MAX_PAGE_DIGESTS_PAYLOAD) {
    throw new WireError(
      `Cannot decode PAGE_DIGESTS: ${payload.length} bytes is over its limit of ${MAX_PAGE_DIGESTS_PAYLOAD}`,
    );
  }
  if (payload.length < PAGE_DIGESTS_HEADER_BYTES) {
    throw new WireError(
      `Cannot decode PAGE_DIGESTS: ${payload.length} bytes is shorter than its ${PAGE_DIGESTS_HEADER_BYTES}-byte header`,
    );
  }
  const v = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const n = v.getUint32(0, true);
  const digestBytes = v.getUint32(4, true);
  if (n < 1 || n > MAX_MISMATCHES) {
    throw new WireError(
      `Cannot decode PAGE_DIGESTS: count "${n}" must be 1..${MAX_MISMATCHES}`,
      0,
    );
  }
  if (digestBytes !== 16 && digestBytes !== 32) {
    throw new WireError(
      `Cannot decode PAGE_DIGESTS: digestBytes "${digestBytes}" must be 16 or 32`,
      4,
    );
  }
  const start = PAGE_DIGESTS_HEADER_BYTES + 4 * n;
  if (payload.length < start || (payload.length - start) % digestBytes !== 0) {
    throw new WireError(
      `Cannot decode PAGE_DIGESTS: ${payload.length} bytes is not ${n} range indexes and whole ${digestBytes}-byte digests`,
      start,
    );
  }
  const ranges: number[] = [];
  for (let i = 0; i < n; i++) ranges.push(v.getUint32(8 + 4 * i, true));
  return { ranges, digestBytes, digests: payload.slice(start) };
}

/**
 * Encodes an ERROR payload; a message longer than {@link MAX_TEXT} is cut.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeError, encodeError } from "@hakobu/hakobu";
 *
 * const error = { message: "Cannot write page 3: disk full" };
 * assert.deepEqual(decodeError(encodeError(error)), error);
 * ```
 */
export function encodeError(error: ErrorMessage): Uint8Array {
  return encodeJson("ERROR", {
    message: error.message.slice(0, MAX_TEXT),
    ...(error.discarded ? { discarded: true } : {}),
  });
}

/**
 * Decodes an ERROR payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeError, encodeError } from "@hakobu/hakobu";
 *
 * assert.equal(decodeError(encodeError({ message: "boom" })).message, "boom");
 * // A peer's text is made safe to print (see peerText):
 * const forged = decodeError(encodeError({ message: "x\nVERIFIED: prod" }));
 * assert.equal(forged.message, "x\\u{a}VERIFIED: prod");
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeError(payload: Uint8Array): ErrorMessage {
  const o = decodeJson("ERROR", payload);
  return {
    message: text("ERROR", o, "message"),
    ...(o.discarded === undefined
      ? {}
      : { discarded: bool("ERROR", o, "discarded") }),
  };
}

/**
 * Encodes an ABORT payload; a reason longer than {@link MAX_TEXT} is cut.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeAbort, encodeAbort } from "@hakobu/hakobu";
 *
 * const abort = { reason: "policy gave up after 30 rounds" };
 * assert.deepEqual(decodeAbort(encodeAbort(abort)), abort);
 * ```
 */
export function encodeAbort(abort: Abort): Uint8Array {
  return encodeJson("ABORT", { reason: abort.reason.slice(0, MAX_TEXT) });
}

/**
 * Decodes an ABORT payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeAbort, encodeAbort } from "@hakobu/hakobu";
 *
 * assert.equal(
 *   decodeAbort(encodeAbort({ reason: "operator" })).reason,
 *   "operator",
 * );
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeAbort(payload: Uint8Array): Abort {
  const o = decodeJson("ABORT", payload);
  return { reason: text("ABORT", o, "reason") };
}

/**
 * Encodes a CODEC payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCodec, encodeCodec } from "@hakobu/hakobu";
 *
 * const setup = { id: 4, name: "dedup", options: { chunkBytes: 1024 } };
 * assert.deepEqual(decodeCodec(encodeCodec(setup)), setup);
 * ```
 */
export function encodeCodec(setup: CodecSetup): Uint8Array {
  return encodeJson("CODEC", {
    id: setup.id,
    name: setup.name,
    options: setup.options,
  });
}

/**
 * Decodes a CODEC payload; `options` must be a JSON object.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCodec, encodeCodec } from "@hakobu/hakobu";
 *
 * const setup = decodeCodec(encodeCodec({ id: 1, name: "zero", options: {} }));
 * assert.equal(setup.name, "zero");
 * ```
 */
export function decodeCodec(payload: Uint8Array): CodecSetup {
  const o = decodeJson("CODEC", payload);
  const options = o.options;
  if (
    typeof options !== "object" || options === null || Array.isArray(options)
  ) {
    throw new WireError(
      `Cannot decode CODEC: field "options" must be a JSON object, got ${
        show(options)
      }`,
    );
  }
  return {
    id: uint("CODEC", o, "id", 255),
    name: text("CODEC", o, "name"),
    options: options as Record<string, unknown>,
  };
}

/**
 * Encodes a RESUME payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeResume, encodeResume } from "@hakobu/hakobu";
 *
 * const resume = { session: "0123456789abcdef0123456789abcdef" };
 * assert.deepEqual(decodeResume(encodeResume(resume)), resume);
 * ```
 */
export function encodeResume(resume: Resume): Uint8Array {
  return encodeJson("RESUME", {
    session: resume.session,
    ...(resume.received === undefined ? {} : { received: resume.received }),
  });
}

/**
 * Decodes a RESUME payload; the session id must be 32 lower-case hex digits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeResume } from "@hakobu/hakobu";
 *
 * const bad = new TextEncoder().encode(JSON.stringify({ session: "1" }));
 * assert.throws(() => decodeResume(bad), /field "session"/);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeResume(payload: Uint8Array): Resume {
  const o = decodeJson("RESUME", payload);
  const session = sessionId("RESUME", o);
  return o.received === undefined ? { session } : {
    session,
    received: uint("RESUME", o, "received", Number.MAX_SAFE_INTEGER),
  };
}

/**
 * Encodes a RESUMED payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeResumed, encodeResumed } from "@hakobu/hakobu";
 *
 * const resumed = { channelPages: [1024, 980] };
 * assert.deepEqual(decodeResumed(encodeResumed(resumed)), resumed);
 * ```
 */
export function encodeResumed(resumed: Resumed): Uint8Array {
  return encodeJson("RESUMED", {
    channelPages: resumed.channelPages,
    ...(resumed.received === undefined ? {} : { received: resumed.received }),
    ...(resumed.result
      ? { result: JSON.parse(decoder.decode(encodeResult(resumed.result))) }
      : {}),
    ...(resumed.channelJoin
      ? {
        channelJoin: {
          session: resumed.channelJoin.session,
          token: resumed.channelJoin.token,
          ports: resumed.channelJoin.ports,
        },
      }
      : {}),
  });
}

/**
 * Decodes a RESUMED payload: at most {@link MAX_CHANNELS} counts, each a
 * whole number of pages. Whether they fit the session (one per channel, no
 * more than the source sent) is the source's check.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeResumed } from "@hakobu/hakobu";
 *
 * const bad = new TextEncoder().encode(JSON.stringify({ channelPages: [-1] }));
 * assert.throws(() => decodeResumed(bad), /channelPages\[0\]/);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeResumed(payload: Uint8Array): Resumed {
  const o = decodeJson("RESUMED", payload);
  const list = o.channelPages;
  // A stream tunnel's replayed link says `received` and no pages.
  const least = o.received === undefined ? 1 : 0;
  if (
    !Array.isArray(list) || list.length < least || list.length > MAX_CHANNELS
  ) {
    throw new WireError(
      `Cannot decode RESUMED: field "channelPages" must be an array of ${least} to ${MAX_CHANNELS} counts, got ${
        show(list)
      }`,
    );
  }
  if (o.received !== undefined) {
    const received = uint("RESUMED", o, "received", Number.MAX_SAFE_INTEGER);
    if (
      list.length > 0 || o.result !== undefined || o.channelJoin !== undefined
    ) {
      throw new WireError(
        `Cannot decode RESUMED: field "received" (a stream tunnel's) goes without pages, a result or channelJoin`,
      );
    }
    return { channelPages: [], received };
  }
  const channelPages = list.map((v: unknown, i: number) => {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      throw new WireError(
        `Cannot decode RESUMED: field "channelPages[${i}]" must be a whole number of pages, got ${
          show(v)
        }`,
      );
    }
    return v;
  });
  const join = o.channelJoin === undefined
    ? {}
    : { channelJoin: channelJoin(o.channelJoin, "RESUMED") };
  if (o.result === undefined) return { channelPages, ...join };
  if (typeof o.result !== "object" || o.result === null) {
    throw new WireError(
      `Cannot decode RESUMED: field "result" must be a RESULT object, got ${
        show(o.result)
      }`,
    );
  }
  return {
    channelPages,
    result: decodeResult(encoder.encode(JSON.stringify(o.result))),
    ...join,
  };
}

/**
 * Encodes a COMMIT payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommit, encodeCommit } from "@hakobu/hakobu";
 *
 * const commit = { digest: "ab".repeat(32) };
 * assert.deepEqual(decodeCommit(encodeCommit(commit)), commit);
 * ```
 */
export function encodeCommit(commit: Commit): Uint8Array {
  return encodeJson("COMMIT", { digest: commit.digest });
}

/**
 * Decodes a COMMIT payload; the digest must be 64 lower-case hex digits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommit } from "@hakobu/hakobu";
 *
 * const bad = new TextEncoder().encode(JSON.stringify({ digest: "AB" }));
 * assert.throws(() => decodeCommit(bad), /field "digest"/);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeCommit(payload: Uint8Array): Commit {
  return { digest: digestField("COMMIT", decodeJson("COMMIT", payload)) };
}

/**
 * Encodes a COMMITTED payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommitted, encodeCommitted } from "@hakobu/hakobu";
 *
 * const committed = { digest: "cd".repeat(32) };
 * assert.deepEqual(decodeCommitted(encodeCommitted(committed)), committed);
 * ```
 */
export function encodeCommitted(committed: Committed): Uint8Array {
  return encodeJson("COMMITTED", { digest: committed.digest });
}

/**
 * Decodes a COMMITTED payload; the digest must be 64 lower-case hex digits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommitted } from "@hakobu/hakobu";
 *
 * const bad = new TextEncoder().encode("{}");
 * assert.throws(() => decodeCommitted(bad), /field "digest"/);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeCommitted(payload: Uint8Array): Committed {
  return {
    digest: digestField("COMMITTED", decodeJson("COMMITTED", payload)),
  };
}

/** A whole digest: 64 lower-case hex digits. */
function digestField(what: string, obj: Record<string, unknown>): string {
  const v = obj.digest;
  if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v)) {
    throw new WireError(
      `Cannot decode ${what}: field "digest" must be 64 lower-case hex digits, got ${
        show(v)
      }`,
    );
  }
  return v;
}

/**
 * Encodes an ACK payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeAck, encodeAck } from "@hakobu/hakobu";
 *
 * const first = {
 *   received: 0,
 *   session: "0123456789abcdef0123456789abcdef",
 *   resumeMs: 30_000,
 * };
 * assert.deepEqual(decodeAck(encodeAck(first)), first);
 * assert.deepEqual(decodeAck(encodeAck({ received: 1 << 20 })), {
 *   received: 1 << 20,
 * });
 * ```
 */
export function encodeAck(ack: Ack): Uint8Array {
  return encodeJson("ACK", {
    received: ack.received,
    ...(ack.session === undefined
      ? {}
      : { session: ack.session, resumeMs: ack.resumeMs ?? 0 }),
  });
}

/**
 * Decodes an ACK payload: `received` a whole number of bytes; `session`,
 * when present, 32 lower-case hex digits with its `resumeMs`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeAck } from "@hakobu/hakobu";
 *
 * const bad = new TextEncoder().encode(JSON.stringify({ received: -1 }));
 * assert.throws(() => decodeAck(bad), /field "received"/);
 * ```
 * @throws {WireError} naming the bad field.
 */
export function decodeAck(payload: Uint8Array): Ack {
  const o = decodeJson("ACK", payload);
  const received = uint("ACK", o, "received", Number.MAX_SAFE_INTEGER);
  if (o.session === undefined) return { received };
  return {
    received,
    session: sessionId("ACK", o),
    resumeMs: uint("ACK", o, "resumeMs", MAX_RESUME_MS),
  };
}
