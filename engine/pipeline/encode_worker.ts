/**
 * One channel's encoder, as a Worker: it owns the channel's codec chain
 * (its encoders' state), fills batches from shared guest memory (native
 * mode) or takes them ready-made (stream mode), encodes and frames them —
 * checksum included — and posts whole frames to the main thread, which only
 * paces and writes them. At most `credits` BATCH frames are on their way at
 * once: the worker waits for a credit before it posts another, so it never
 * runs far ahead of the link.
 *
 * Requests are handled one at a time, in order (`_messages.ts`).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { BatchEncoderChain } from "../codecs/batch_chain.ts";
import { rangeDigests } from "../digest.ts";
import {
  encodeFrame,
  encodeFrameHeader,
  FrameType,
  HEADER_BYTES,
} from "../wire/frame.ts";
import { MAX_PAGES_PER_BATCH } from "../wire/batch.ts";
import { MAX_BATCH_PAGES } from "../plan.ts";
import { encodeCodec, encodeRoundEnd } from "../wire/messages.ts";
import { connectAndJoin } from "./_channel_join.ts";
import type { FrameWriter } from "../wire/frame_writer.ts";
import { Pacer } from "../transport/pacer.ts";
import { within } from "../session/_within.ts";
import { MigrationError } from "../errors.ts";
import type { PageBatch } from "../codecs/batch.ts";
import {
  type EncodeInit,
  type EncodeReply,
  type EncodeRequest,
  workerError,
} from "./_messages.ts";
import { PageBatchBuilder } from "./page_batch.ts";
import { isZeroPage } from "../zero_page.ts";
import type { GpuContext } from "../gpu/device.ts";
import type { GpuBatchEncoder } from "../gpu/batch_encoder.ts";

let init: EncodeInit | null = null;
let chain: BatchEncoderChain | null = null;
let builder: PageBatchBuilder | null = null;
let memory: Uint8Array | null = null;
let credits = 0;
let creditWaiter: (() => void) | null = null;
const buffers: ArrayBuffer[] = [];
const queue: EncodeRequest[] = [];
let wake: (() => void) | null = null;
let failed = false;
/** The channel's own GPU, when asked for and found. */
let gpu: GpuContext | null = null;
/**
 * The GPU modules, imported only when a GPU is asked for: a channel that
 * encodes on the CPU (every stream tunnel's) does not compile them, and
 * starts that much sooner.
 */
let gpuModule: typeof import("../gpu/batch_encoder.ts") | null = null;
/** One GPU encoder per GPU chain used so far (each keeps its own delta cache). */
const gpuEncoders = new Map<string, GpuBatchEncoder>();
/**
 * Per-channel connection: this worker writes its frames there itself
 * (paced at its share of the link), instead of posting them.
 */
let link: {
  writer: FrameWriter;
  pacer: Pacer | null;
  /** Most milliseconds one write may wait for the link (the reply deadline). */
  stallMs: number;
  close(): void;
} | null = null;
/** Frame bytes this channel wrote in the current round (for its ROUND_END). */
let roundWire = 0;

/** Writes a whole frame on the channel's connection, paced. */
async function writeOnLink(bytes: Uint8Array): Promise<void> {
  await link!.pacer?.take(bytes.length);
  await writeWithin(bytes);
  roundWire += bytes.length;
}

/**
 * The link under this channel failed (posted as "lost", not as the
 * channel's error): a resumable migration resumes from it.
 */
class ChannelLinkLost extends MigrationError {}

/** Writes on the channel's connection, failing when the link takes nothing within its stall bound. */
async function writeWithin(bytes: Uint8Array): Promise<void> {
  const { stallMs, writer } = link!;
  await within(
    writer.writeRaw(bytes).catch((e: unknown) => {
      throw new ChannelLinkLost(
        `Channel ${init!.channel}'s connection to the receiver was lost: ${
          e instanceof Error ? e.message : String(e)
        }`,
        { cause: e },
      );
    }),
    stallMs,
    () =>
      new ChannelLinkLost(
        `Channel ${
          init!.channel
        }'s connection took no bytes for ${stallMs} ms (the reply deadline): the receiver or the link is stuck`,
      ),
  );
}

function post(reply: EncodeReply, transfer: Transferable[] = []): void {
  self.postMessage(reply, { transfer });
}

self.onmessage = (e: MessageEvent<EncodeRequest>) => {
  const req = e.data;
  if (req.type === "credit") {
    // Credits bypass the queue: the loop may be waiting for one.
    credits++;
    if (req.buffer) buffers.push(req.buffer);
    creditWaiter?.();
    return;
  }
  queue.push(req);
  wake?.();
};

async function nextRequest(): Promise<EncodeRequest> {
  while (queue.length === 0) await new Promise<void>((r) => wake = r);
  wake = null;
  return queue.shift()!;
}

async function takeCredit(): Promise<void> {
  while (credits === 0) {
    await new Promise<void>((r) => creditWaiter = r);
    creditWaiter = null;
  }
  credits--;
}

/** A buffer for a frame of `bytes` bytes: a returned one when big enough. */
function frameBuffer(bytes: number): Uint8Array {
  for (let i = 0; i < buffers.length; i++) {
    if (buffers[i].byteLength >= bytes) {
      const [b] = buffers.splice(i, 1);
      return new Uint8Array(b, 0, bytes);
    }
  }
  // Room to grow: a frame of the same batch size usually fits next time.
  return new Uint8Array(new ArrayBuffer(Math.ceil(bytes * 1.25)), 0, bytes);
}

/** Announces codecs this chain created since the last batch (CODEC frames). */
async function announce(round: number): Promise<void> {
  for (const { codec, options } of chain!.takeNewCodecs()) {
    const bytes = encodeFrame(
      FrameType.CODEC,
      round,
      encodeCodec({ id: codec.id, name: codec.name, options }),
      init!.channel,
    );
    if (link) {
      await writeOnLink(bytes);
      post({
        type: "sent",
        wireBytes: bytes.length,
        pages: 0,
        claims: [],
        gpuPages: 0,
      });
      continue;
    }
    post({
      type: "frame",
      bytes,
      credited: false,
      pages: 0,
      claims: [],
      gpuPages: 0,
    }, [
      bytes.buffer as ArrayBuffer,
    ]);
  }
}

/** The GPU encoder for the active chain, or null when the batch runs on the CPU. */
function gpuEncoder(): GpuBatchEncoder | null {
  if (!gpu) return null;
  const g = gpuModule!.gpuChainOf(chain!.activeCodecs);
  if (!g) return null;
  const key = g.join(",");
  let enc = gpuEncoders.get(key);
  if (!enc) {
    const deltaOptions = chain!.optionsOf("delta");
    enc = new gpuModule!.GpuBatchEncoder(gpu.device, {
      chain: g,
      batch: init!.gpu!.batch,
      pageSize: init!.pageSize,
      pageCount: init!.pageCount,
      // each channel caches its own pfns, in its share (as the CPU encoder)
      deltaOptions: deltaOptions
        ? {
          cacheBytes: Math.max(
            init!.pageSize,
            Math.floor(
              Number(deltaOptions.cacheBytes) / init!.channels / init!.pageSize,
            ) * init!.pageSize,
          ),
        }
        : {},
    });
    gpuEncoders.set(key, enc);
  }
  return enc;
}

/**
 * Encodes one batch on the GPU (in dispatches of `gpu.batch` pages): page
 * by page the same codec and bytes as the CPU chain would give.
 */
async function encodeOnGpu(
  enc: GpuBatchEncoder,
  batch: PageBatch,
): Promise<{ codecOf: Uint8Array; bytes: Uint8Array[] }> {
  const ps = batch.pageSize;
  const codecOf = new Uint8Array(batch.count);
  const bytes: Uint8Array[] = new Array(batch.count);
  const per = init!.gpu!.batch;
  for (let start = 0; start < batch.count; start += per) {
    const n = Math.min(per, batch.count - start);
    const pfns = new Uint32Array(n);
    const pages: Uint8Array[] = new Array(n);
    for (let k = 0; k < n; k++) {
      pfns[k] = batch.pfns[start + k];
      pages[k] = batch.pages.subarray((start + k) * ps, (start + k + 1) * ps);
    }
    const res = await enc.encode(pfns, pages);
    for (let k = 0; k < n; k++) {
      codecOf[start + k] = res.codecIds[k];
      bytes[start + k] = res.bytes(k).slice();
    }
  }
  return { codecOf, bytes };
}

/** Encodes one batch into a BATCH frame and posts it (after taking a credit). */
async function sendBatch(batch: PageBatch, round: number): Promise<void> {
  // On its own connection the channel waits for the link itself.
  if (!link) await takeCredit();
  await announce(round);
  let frame: Uint8Array | null = null;
  const alloc = (n: number) => {
    frame = frameBuffer(HEADER_BYTES + n);
    return frame.subarray(HEADER_BYTES);
  };
  const enc = gpuEncoder();
  let gpuPages = 0;
  let info;
  if (enc) {
    const r = await encodeOnGpu(enc, batch);
    info = chain!.encodeWith(batch, r.codecOf, (i) => r.bytes[i], alloc);
    gpuPages = batch.count;
  } else {
    info = chain!.encode(batch, alloc);
  }
  // Every other GPU encoder keeps its delta cache in step with what was sent.
  const ps = batch.pageSize;
  for (const g of gpuEncoders.values()) {
    if (g === enc) continue;
    for (let i = 0; i < batch.count; i++) {
      g.recordSent(batch.pfns[i], batch.pages.subarray(i * ps, (i + 1) * ps));
    }
  }
  const bytes = frame! as Uint8Array;
  encodeFrameHeader(
    FrameType.BATCH,
    round,
    info.payload,
    bytes,
    init!.channel,
  );
  if (link) {
    await writeOnLink(bytes);
    // Written (a TLS connection copies, a socket took it): reuse it.
    buffers.push(bytes.buffer as ArrayBuffer);
    post({
      type: "sent",
      wireBytes: bytes.length,
      pages: batch.count,
      claims: [...info.claims],
      gpuPages,
    });
    return;
  }
  post({
    type: "frame",
    bytes,
    credited: true,
    pages: batch.count,
    claims: [...info.claims],
    gpuPages,
  }, [bytes.buffer as ArrayBuffer]);
}

async function handle(req: EncodeRequest): Promise<void> {
  switch (req.type) {
    case "init": {
      // Also a reused channel's next migration: everything of the last
      // one goes but the frame buffers (`buffers`, kept for reuse).
      init = req;
      credits = req.credits;
      for (const g of gpuEncoders.values()) g.destroy();
      gpuEncoders.clear();
      chain = new BatchEncoderChain({
        pageSize: req.pageSize,
        pageCount: req.pageCount,
        channels: req.channels,
      });
      builder = new PageBatchBuilder({
        pageSize: req.pageSize,
        nonZeroPages: Math.min(req.batchPages, MAX_BATCH_PAGES),
        maxPages: MAX_PAGES_PER_BATCH,
      });
      memory = req.memory ? new Uint8Array(req.memory) : null;
      if (req.gpu) {
        let note = "";
        gpuModule = await import("../gpu/batch_encoder.ts");
        const { openGpu } = await import("../gpu/device.ts");
        gpu = await openGpu({
          prefer: req.gpu.prefer,
          onFallback: (reason) => note = reason,
        });
        post({
          type: "gpu",
          adapter: gpu?.adapterInfo.description ?? null,
          software: gpu?.adapterInfo.isFallbackAdapter ?? false,
          note,
        });
      }
      return;
    }
    case "chain":
      chain!.select(req.specs);
      builder!.countZeroPages = !chain!.activeCodecs.some((c) =>
        c.cheapZeroPages
      );
      return;
    case "round": {
      const b = builder!;
      b.reset();
      roundWire = 0;
      const pfns = req.pfns;
      for (let i = 0; i < pfns.length;) {
        i = b.addRunFrom(memory!, pfns, i, pfns.length);
        if (b.full) {
          await sendBatch(b, req.round);
          b.reset();
        }
      }
      if (b.count > 0) {
        await sendBatch(b, req.round);
        b.reset();
      }
      let endBytes: number | undefined;
      if (link) {
        // The channel ends its part of the round on its own connection,
        // after its last frame of it.
        const end = encodeFrame(
          FrameType.ROUND_END,
          req.round,
          encodeRoundEnd({
            round: req.round,
            pages: pfns.length,
            rawBytes: pfns.length * init!.pageSize,
            wireBytes: roundWire,
            ...(req.final ? { final: true } : {}),
          }),
          init!.channel,
        );
        await writeWithin(end);
        endBytes = end.length;
      }
      post({
        type: "done",
        id: req.id,
        round: req.round,
        pages: pfns.length,
        ...(endBytes === undefined ? {} : { endBytes }),
      });
      return;
    }
    case "connect": {
      const j = await connectAndJoin(
        req.to,
        req.security,
        req.join,
        req.timeoutMs,
      ).catch((e: unknown) => {
        // A refusal (the receiver's ERROR, a failed handshake) is final;
        // a connection that could not be made is a lost link.
        if (e instanceof MigrationError) throw e;
        throw new ChannelLinkLost(
          `Channel ${req.join.channel} could not connect to the receiver at ${req.to.hostname}:${req.to.port}: ${
            e instanceof Error ? e.message : String(e)
          }`,
          { cause: e },
        );
      });
      link = {
        writer: j.writer,
        pacer: req.bytesPerSecond
          ? new Pacer({ bytesPerSecond: req.bytesPerSecond })
          : null,
        stallMs: req.timeoutMs,
        close: () => {
          try {
            j.conn.close();
          } catch { /* closed */ }
        },
      };
      post({ type: "joined" });
      return;
    }
    case "batch": {
      const ps = init!.pageSize;
      const zero = new Uint8Array(req.count);
      for (let i = 0; i < req.count; i++) {
        zero[i] = isZeroPage(req.pages.subarray(i * ps, (i + 1) * ps)) ? 1 : 0;
      }
      await sendBatch({
        count: req.count,
        pageSize: ps,
        pfns: req.pfns,
        pages: req.pages.subarray(0, req.count * ps),
        zero,
      }, req.round);
      // The pages' buffer goes back for a later batch (the chain keeps
      // copies of what it needs, as it must of native mode's reused batch).
      const buffer = req.pages.buffer as ArrayBuffer;
      post(
        {
          type: "done",
          id: req.id,
          round: req.round,
          pages: req.count,
          buffer,
        },
        [buffer],
      );
      return;
    }
    case "digest": {
      const digests = rangeDigests(
        memory!,
        req.rangeBytes,
        req.from,
        req.to,
        undefined,
        { scheme: req.scheme, step: req.step },
      );
      post({ type: "digest", id: req.id, digests }, [
        digests.buffer as ArrayBuffer,
      ]);
      return;
    }
    case "sync":
      post({ type: "synced", id: req.id });
      return;
  }
}

(async () => {
  for (;;) {
    const req = await nextRequest();
    if (failed) continue;
    try {
      await handle(req);
    } catch (e) {
      failed = true;
      if (e instanceof ChannelLinkLost) {
        // (assigned by "connect", which TypeScript does not follow)
        (link as { close(): void } | null)?.close();
        post({ type: "lost", message: e.message });
      } else post(workerError(e));
    }
  }
})();
