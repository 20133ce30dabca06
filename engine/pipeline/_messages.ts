/**
 * The messages between a session's main thread and its channel Workers
 * (`encode_worker.ts`, `decode_worker.ts`). Buffers travel as transfers, so
 * no page is copied between threads.
 *
 * @module
 */

import { CodecError, HakobuError } from "../errors.ts";
import type { DigestScheme } from "../digest.ts";
import type { CodecSpec } from "../plan.ts";
import type { CodecRef, CodecSetup, RoundEnd } from "../wire/messages.ts";
import type { JoinListenOptions } from "./_channel_join.ts";
import type { Address } from "../transport/address.ts";
import type { ConnectSecurity } from "../transport/secure/mod.ts";
import type { Join } from "../wire/messages.ts";
import type { DecodeGpu } from "../session/receive_gpu.ts";

/** Digests of ranges `from, from + step, ...` below `to` of shared memory, `rangeBytes` each (either pool's Workers). */
export interface DigestRequest {
  readonly type: "digest";
  readonly id: number;
  readonly from: number;
  readonly to: number;
  readonly step: number;
  readonly rangeBytes: number;
  readonly scheme: DigestScheme;
}

/** A {@link DigestRequest}'s answer: one digest per range, one after the other. */
export interface DigestReply {
  readonly type: "digest";
  readonly id: number;
  readonly digests: Uint8Array;
}

/**
 * A Worker's failure on its way to the main thread: an Error does not keep
 * its class through `postMessage`, so its name and what it carried travel
 * as fields and the pool rebuilds the error.
 */
export interface WorkerError {
  readonly type: "error";
  readonly name: string;
  readonly message: string;
  /** A {@link HakobuError}'s offset, e.g. a `WireError`'s stream offset. */
  readonly offset?: number;
  /** A `CodecError`'s codec. */
  readonly codec?: string;
}

/** `err` as a {@link WorkerError}, keeping its name, offset and codec. */
export function workerError(err: unknown): WorkerError {
  return {
    type: "error",
    name: err instanceof Error ? err.name : "Error",
    message: err instanceof Error ? err.message : String(err),
    ...(err instanceof HakobuError && err.offset !== undefined
      ? { offset: err.offset }
      : {}),
    ...(err instanceof CodecError ? { codec: err.codec } : {}),
  };
}

/** Sets a channel's encoder up. */
export interface EncodeInit {
  readonly type: "init";
  readonly channel: number;
  readonly channels: number;
  readonly pageSize: number;
  readonly pageCount: number;
  /** Guest memory shared with the source driver (native mode); absent in stream mode. */
  readonly memory?: SharedArrayBuffer;
  /** Non-zero pages that close a batch. */
  readonly batchPages: number;
  /** Frames the worker may have on their way to the link at once. */
  readonly credits: number;
  /**
   * Encode on the GPU, where the chain has twins: the main thread found an
   * adapter the plan accepts; the worker opens its own device.
   */
  readonly gpu?: {
    readonly prefer: "gpu" | "auto";
    /** Pages per GPU dispatch. */
    readonly batch: number;
  };
}

/** Main → encode worker. */
export type EncodeRequest =
  | EncodeInit
  | { readonly type: "chain"; readonly specs: readonly CodecSpec[] }
  | {
    /** Native mode: send these pfns (ascending) of shared memory as round `round`. */
    readonly type: "round";
    readonly id: number;
    readonly round: number;
    readonly pfns: Uint32Array;
    /** The stop-and-copy round: on a channel connection, its ROUND_END says `final`. */
    readonly final?: boolean;
  }
  | {
    /**
     * Stream mode: encode exactly these pages (the first `count` of
     * `pages`) as one BATCH frame; `pages`' buffer comes back with "done".
     */
    readonly type: "batch";
    readonly id: number;
    readonly round: number;
    readonly count: number;
    readonly pfns: Float64Array;
    readonly pages: Uint8Array;
  }
  | {
    /** A frame buffer the main thread has written: one more credit. */
    readonly type: "credit";
    readonly buffer: ArrayBuffer | null;
  }
  | DigestRequest
  | {
    /** Answer "synced" once every request before this one is handled. */
    readonly type: "sync";
    readonly id: number;
  }
  | {
    /**
     * Per-channel connection: connect to the receiver, JOIN, and from then
     * on write this channel's frames (ROUND_END included) on it, paced at
     * `bytesPerSecond` (null: unpaced), instead of posting them. Answered
     * with "joined" (or an error).
     */
    readonly type: "connect";
    readonly to: Address;
    readonly security: ConnectSecurity;
    readonly join: Join;
    readonly timeoutMs: number;
    readonly bytesPerSecond: number | null;
  };

/** Encode worker → main. */
export type EncodeReply =
  | {
    /** A whole frame (header and payload) to write on the link, in channel order. */
    readonly type: "frame";
    readonly bytes: Uint8Array;
    /** Whether it took a credit (BATCH) or not (CODEC). */
    readonly credited: boolean;
    readonly pages: number;
    /** Pages claimed per codec id, `[id, pages]`. */
    readonly claims: readonly (readonly [number, number])[];
    /** Of its pages, those encoded on the GPU. */
    readonly gpuPages: number;
  }
  | {
    /** Per-channel connection: a frame the worker wrote on it itself. */
    readonly type: "sent";
    /** Frame bytes written. */
    readonly wireBytes: number;
    readonly pages: number;
    readonly claims: readonly (readonly [number, number])[];
    readonly gpuPages: number;
  }
  | {
    /** Per-channel connection: the channel's connection joined its session. */
    readonly type: "joined";
  }
  | {
    /**
     * Per-channel connection: the link failed under this channel (a write
     * failed or took nothing within the reply deadline, or the connection
     * could not be made): a lost link, which a resumable migration resumes,
     * not the channel's failure. The Worker does nothing more.
     */
    readonly type: "lost";
    readonly message: string;
  }
  | {
    /** The worker's GPU: its adapter, or why it has none (after init, when asked for one). */
    readonly type: "gpu";
    readonly adapter: string | null;
    readonly software: boolean;
    readonly note: string;
  }
  | {
    /** A `round` or `batch` request is done: every frame of it was posted. */
    readonly type: "done";
    readonly id: number;
    readonly round: number;
    readonly pages: number;
    /** A `batch` request's pages buffer, given back for the next batch. */
    readonly buffer?: ArrayBuffer;
    /** Per-channel connection: bytes of the ROUND_END the worker wrote. */
    readonly endBytes?: number;
  }
  | DigestReply
  | {
    /** Every request before `sync` `id` is handled. */
    readonly type: "synced";
    readonly id: number;
  }
  | WorkerError;

export type { DecodeGpu, DecodeGpuInfo } from "../session/receive_gpu.ts";

/** Sets a channel's decoder up. */
export interface DecodeInit {
  readonly type: "init";
  readonly channel: number;
  readonly channels: number;
  readonly pageSize: number;
  readonly pageCount: number;
  /** The codecs HELLO negotiated. */
  readonly codecs: readonly CodecRef[];
  /** Destination memory shared with the sink: pages are written straight into it. */
  readonly memory?: SharedArrayBuffer;
  /** One byte per page, shared: 1 once a page was written with non-zero bytes. */
  readonly touched?: SharedArrayBuffer;
  /** Decode on the GPU where a section's codec has a GPU twin (absent: the CPU decodes). */
  readonly gpu?: DecodeGpu;
}

/** Main → decode worker. */
export type DecodeRequest =
  | DecodeInit
  | {
    readonly type: "codec";
    readonly setup: CodecSetup;
    /** Stream offset of the frame, for errors. */
    readonly at: number;
  }
  | {
    readonly type: "batch";
    readonly id: number;
    readonly round: number;
    readonly payload: Uint8Array;
    readonly at: number;
    /**
     * The payload's buffer is the worker's (transferred by the main
     * thread): it goes back with the reply, for a later frame to be read
     * into.
     */
    readonly giveBack?: boolean;
  }
  | { readonly type: "sync"; readonly id: number }
  | {
    /** Return mode: a "pages" reply's buffer, used up: for a later reply. */
    readonly type: "buffer";
    readonly buffer: ArrayBuffer;
  }
  | DigestRequest
  | {
    /**
     * Per-channel connection: listen for this channel's connection
     * (answered "listening" with the port, then "joined"), and from then
     * on read and apply its frames, asking the main thread about each CODEC
     * and ROUND_END ("codecAsk", "roundEnd") before reading on.
     */
    readonly type: "listen";
    readonly options: JoinListenOptions;
    /** Most milliseconds for each next whole frame on the connection. */
    readonly frameTimeoutMs: number;
  }
  | {
    /** The answer to "codecAsk" or "roundEnd": go on reading. */
    readonly type: "go";
  }
  | {
    /**
     * Per-channel connection: stop listening and reading, and close the
     * connection (a resumable session parks): no frame is applied after
     * this request, so a "sync" sent after it counts the channel's pages
     * for good.
     */
    readonly type: "halt";
  };

/** Decode worker → main. */
export type DecodeReply =
  | {
    /** Shared-memory mode: a batch is applied. */
    readonly type: "applied";
    readonly id: number;
    readonly round: number;
    readonly pages: number;
    /** Of its pages, those decoded on the GPU. */
    readonly gpuPages: number;
    /** The batch's payload buffer, given back (a `giveBack` batch). */
    readonly payload?: ArrayBuffer;
  }
  | {
    /**
     * Return mode (no shared memory): a batch decoded. Page `i` is pfn
     * `pfns[i]`, its bytes at `slot[i] * pageSize` of `pages`, or all zero
     * when `slot[i]` is -1. `pages` may be longer than its slots (a
     * returned buffer reused); give it back with a "buffer" request.
     */
    readonly type: "pages";
    readonly id: number;
    readonly round: number;
    readonly count: number;
    readonly pfns: Float64Array;
    readonly slot: Int32Array;
    readonly pages: Uint8Array;
    /** Pages decoded per codec id, `[id, pages]`. */
    readonly claims: readonly (readonly [number, number])[];
    /** Of its pages, those decoded on the GPU. */
    readonly gpuPages: number;
    /** The batch's payload buffer, given back (a `giveBack` batch). */
    readonly payload?: ArrayBuffer;
  }
  | {
    /** The worker's GPU: its adapter, or why it has none (after init, when asked for one). */
    readonly type: "gpu";
    readonly adapter: string | null;
    readonly software: boolean;
    readonly note: string;
  }
  | { readonly type: "synced"; readonly id: number; readonly applied: number }
  | DigestReply
  | { readonly type: "listening"; readonly port: number }
  | { readonly type: "joined"; readonly remote: string }
  | {
    /** A connection to the channel's port that was refused (and closed). */
    readonly type: "refused";
    readonly message: string;
  }
  | {
    /** A CODEC frame on the channel's connection, at its offset: may it be created? */
    readonly type: "codecAsk";
    readonly setup: CodecSetup;
    readonly at: number;
  }
  | {
    /** A ROUND_END on the channel's connection; every BATCH before it is applied. */
    readonly type: "roundEnd";
    readonly end: RoundEnd;
    readonly at: number;
  }
  | {
    /**
     * The channel's connection was lost (a reset, a close before its last
     * round, a cut inside a frame): the link's failure, not the channel's,
     * so a resumable session may park. The Worker reads no more.
     */
    readonly type: "lost";
    readonly message: string;
  }
  | {
    /** A BATCH from the channel's connection is applied; frame bytes read on it so far. */
    readonly type: "progress";
    readonly bytes: number;
    /** Of that BATCH, pages decoded on the GPU. */
    readonly gpuPages: number;
  }
  | WorkerError;
