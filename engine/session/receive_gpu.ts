/**
 * The receiver's GPU: whether its decode Workers decode `rle` and `delta`
 * sections on a GPU, and what its report says about it.
 *
 * The destination decides, not the source's plan: the plan's `gpu()`
 * settings govern the source's hardware, and a receiver serves sources of
 * any plan. The rules are the sender's (`openGpu`): `auto` uses a hardware
 * GPU only (a software adapter such as lavapipe is slower than the CPU
 * decoders), `gpu` takes any adapter, `cpu` never touches WebGPU, and
 * `require` fails the session with a `GpuError` instead of falling back.
 * The default is `cpu`.
 *
 * @module
 */

import { GpuError } from "../gpu/device.ts";

/**
 * A receiver's GPU decode settings (`openGpu`'s rules): each decode Worker
 * opens its own device and decodes its batches' `rle` and `delta` sections
 * on it.
 */
export interface DecodeGpu {
  /** `auto`: a hardware adapter only; `gpu`: any adapter, software ones too. */
  readonly prefer: "gpu" | "auto";
  /** Fail the session (a `GpuError`) instead of decoding on the CPU when no adapter is accepted. */
  readonly require: boolean;
  /** Pages per GPU dispatch. */
  readonly batch: number;
}

/** A decode Worker's GPU: its adapter, or why it has none (`note`). */
export interface DecodeGpuInfo {
  /** The adapter, in words, or null when the Worker decodes on the CPU. */
  readonly adapter: string | null;
  /** A software adapter (lavapipe): correct, not fast. */
  readonly software: boolean;
  /** Why no adapter was taken, or what the one taken is. */
  readonly note: string;
}

/** How a receiver decodes: the `gpu` option of `receiveMigration` and `hakobu receive --gpu`. */
export interface ReceiverGpuSettings {
  /** `cpu` (default): never; `auto`: on a hardware GPU; `gpu`: on any adapter, software ones too. */
  readonly prefer?: "auto" | "gpu" | "cpu";
  /** Fail the session instead of decoding on the CPU when no adapter is accepted (default false). */
  readonly require?: boolean;
  /** Pages per GPU dispatch (default 8192, as a plan's `gpu.batch`). */
  readonly batch?: number;
}

/** What a receiving session's report says about its GPU. */
export interface ReceiveGpuReport {
  /** Whether any page was decoded on the GPU. */
  readonly used: boolean;
  /** The adapter the decode Workers opened, or null. */
  readonly adapter: string | null;
  /** Pages decoded on the GPU, every channel together. */
  readonly pagesDecoded: number;
  /** In words: what decoded where, or why the GPU was not used. */
  readonly note: string;
}

/** Pages per GPU dispatch when the settings name none. */
export const DEFAULT_RECEIVER_GPU_BATCH = 8192;

const MAX_BATCH = 1_048_576;

/**
 * The decode Workers' GPU settings of `settings`, checked; `undefined` when
 * the CPU decodes (`prefer: "cpu"`, the default).
 *
 * @throws {GpuError} for an unknown `prefer` or a `batch` that is not a
 *   whole number of pages from 1 to 1048576.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeGpuOf } from "./receive_gpu.ts";
 *
 * assert.equal(decodeGpuOf(undefined), undefined); // the CPU decodes
 * assert.deepEqual(decodeGpuOf({ prefer: "gpu" }), {
 *   prefer: "gpu",
 *   require: false,
 *   batch: 8192,
 * });
 * assert.throws(() => decodeGpuOf({ prefer: "fast" as "gpu" }), /prefer/);
 * ```
 */
export function decodeGpuOf(
  settings: ReceiverGpuSettings | undefined,
): DecodeGpu | undefined {
  const prefer = settings?.prefer ?? "cpu";
  if (prefer !== "cpu" && prefer !== "auto" && prefer !== "gpu") {
    throw new GpuError(
      `Unknown receiver GPU preference "${prefer}": expected auto, gpu or cpu`,
    );
  }
  const batch = settings?.batch ?? DEFAULT_RECEIVER_GPU_BATCH;
  if (!Number.isInteger(batch) || batch < 1 || batch > MAX_BATCH) {
    throw new GpuError(
      `Bad receiver GPU batch "${batch}": expected a whole number of pages from 1 to ${MAX_BATCH}`,
    );
  }
  if (prefer === "cpu") return undefined;
  return { prefer, require: settings?.require ?? false, batch };
}

/**
 * The report of a session's GPU from what its decode Workers said
 * (`infos`, one per channel, null where unknown) and the pages they
 * decoded on it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { receiveGpuReport } from "./receive_gpu.ts";
 *
 * const r = receiveGpuReport(
 *   { prefer: "gpu", require: false, batch: 8192 },
 *   [{ adapter: "llvmpipe", software: true, note: "software adapter" }],
 *   12,
 * );
 * assert.equal(r.used, true);
 * assert.equal(r.pagesDecoded, 12);
 * assert.match(r.note, /decoded 12 pages on llvmpipe/);
 * assert.equal(receiveGpuReport(undefined, [], 0).used, false);
 * ```
 */
export function receiveGpuReport(
  asked: DecodeGpu | undefined,
  infos: readonly (DecodeGpuInfo | null)[],
  pages: number,
): ReceiveGpuReport {
  if (!asked) {
    return {
      used: false,
      adapter: null,
      pagesDecoded: 0,
      note: "not used: the receiver decodes on the CPU (--gpu cpu)",
    };
  }
  const opened = infos.find((i) => i?.adapter);
  const adapter = opened?.adapter ?? null;
  if (pages > 0) {
    return {
      used: true,
      adapter,
      pagesDecoded: pages,
      note: `decoded ${pages} pages on ${adapter}` +
        (opened?.software ? " (software adapter: correct, not fast)" : ""),
    };
  }
  const why = infos.find((i) => i && !i.adapter)?.note;
  return {
    used: false,
    adapter,
    pagesDecoded: 0,
    note: adapter
      ? `not used: no rle or delta section came (${adapter} opened)`
      : `not used: ${why ?? "no decode Worker opened a GPU"}`,
  };
}
