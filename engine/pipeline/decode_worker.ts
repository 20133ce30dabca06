/**
 * One channel's decoder, as a Worker: it owns the channel's decoders (their
 * state mirrors the sender's encoders of the same channel), validates each
 * BATCH whole, decodes it into a scratch buffer, and only then applies it:
 * straight into destination memory when the sink shares it, or back to the
 * main thread (stream sinks rebuild a hypervisor's stream from the pages).
 * A malformed batch writes nothing.
 *
 * Requests are handled one at a time, in order (`_messages.ts`): with a
 * GPU (`_gpu_decode.ts`) a batch's decode is asynchronous, so each request
 * waits for the one before it to finish.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { BatchDecoderSet } from "../codecs/batch_chain.ts";
import type { Codec } from "../codecs/codec.ts";
import { codecById } from "../codecs/registry.ts";
import { rangeDigests } from "../digest.ts";
import { WireError } from "../errors.ts";
import { parseBatchPayload, ParsedBatch } from "../wire/batch.ts";
import {
  type DecodeInit,
  type DecodeReply,
  type DecodeRequest,
  workerError,
} from "./_messages.ts";
import { channelOf } from "./partition.ts";
import { type JoinedConn, listenForJoin } from "./_channel_join.ts";
import { within } from "../session/_within.ts";
import { FrameType, frameTypeName, HEADER_BYTES } from "../wire/frame.ts";
import { decodeCodec, decodeRoundEnd } from "../wire/messages.ts";
import { PageShadow } from "./page_shadow.ts";
import { isZeroPage } from "../zero_page.ts";
import type { GpuSectionDecoder } from "./_gpu_decode.ts";
import { BufferShelf } from "./_buffer_shelf.ts";

let init: DecodeInit | null = null;
let set: BatchDecoderSet | null = null;
let memory: Uint8Array | null = null;
let touched: Uint8Array | null = null;
let shadow: PageShadow | null = null;
let zeroPage = new Uint8Array(0);
const parsed = new ParsedBatch();
let applied = 0;
let failed = false;
/** The channel's GPU decoder, when the receiver asked for one and it opened. */
let gpu: GpuSectionDecoder | null = null;
/** Per-channel connection: frame bytes read on it so far (null: frames come from the main thread). */
let connBytes: (() => number) | null = null;
/** Per-channel connection: the main thread's "go", awaited after each CODEC and ROUND_END. */
let go: (() => void) | null = null;
/**
 * Per-channel connection: the session halted this channel (it parks):
 * nothing more is read or applied, and a loss is nobody's news.
 */
let halted = false;
/** Per-channel connection: stops listening and closes the connection (for "halt"). */
let hangUp: (() => void) | null = null;
/** Return mode: "pages" buffers the main thread gave back, for later replies. */
const free = new BufferShelf(8);

/**
 * The payload buffer of a batch the main thread gave up (`giveBack`), to go
 * back with the reply once the batch is decoded: nothing here keeps a view
 * of a payload past its batch (decoders copy what they keep).
 */
function givenBack(
  req: Extract<DecodeRequest, { type: "batch" }>,
): ArrayBuffer | undefined {
  return req.giveBack ? req.payload.buffer as ArrayBuffer : undefined;
}

/** A given-back buffer of at least `bytes`, or a fresh one. */
function pagesBuffer(bytes: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(free.take(bytes) ?? new ArrayBuffer(bytes));
}

function post(reply: DecodeReply, transfer: Transferable[] = []): void {
  self.postMessage(reply, { transfer });
}

async function handle(req: DecodeRequest): Promise<void> {
  if (failed) return;
  switch (req.type) {
    case "init": {
      // Also a reused channel's next session: everything of the last one
      // goes but the given-back buffers.
      init = req;
      shadow = null;
      applied = 0;
      gpu?.destroy();
      gpu = null;
      const negotiated = new Map<number, Codec>();
      for (const { id } of req.codecs) negotiated.set(id, codecById(id)!);
      memory = req.memory ? new Uint8Array(req.memory) : null;
      touched = req.touched ? new Uint8Array(req.touched) : null;
      const ps = req.pageSize;
      zeroPage = new Uint8Array(ps);
      const mem = memory;
      const current = mem
        ? (pfn: number) => mem.subarray(pfn * ps, (pfn + 1) * ps)
        : (pfn: number) => shadow?.read(pfn) ?? zeroPage;
      set = new BatchDecoderSet(negotiated, {
        pageSize: ps,
        pageCount: req.pageCount,
        channels: req.channels,
        current,
      });
      if (req.gpu) {
        const { GpuSectionDecoder } = await import("./_gpu_decode.ts");
        const opened = await GpuSectionDecoder.open(req.gpu, ps, current);
        gpu = opened.decoder;
        post({ type: "gpu", ...opened.info });
      }
      return;
    }
    case "codec": {
      set!.announce(req.setup, req.at);
      // A decoder that reads the destination's pages is announced: without
      // shared memory, keep this channel's pages from now on (the sender's
      // delta cache starts no earlier than this frame).
      if (set!.readsCurrent && !memory && !shadow) {
        shadow = new PageShadow(init!.pageCount, init!.pageSize);
      }
      return;
    }
    case "batch": {
      const { pageCount, pageSize: ps } = init!;
      let batch;
      try {
        batch = parseBatchPayload(req.payload, {
          pageCount,
          knows: (id) => set!.knows(id),
        }, parsed);
      } catch (e) {
        if (e instanceof WireError) {
          throw new WireError(e.message, req.at + 16 + (e.offset ?? 0));
        }
        throw e;
      }
      // A page on another channel than the partition's could overtake a
      // later version of itself sent on its own channel.
      const { channel, channels } = init!;
      if (channels > 1) {
        for (let i = 0; i < batch.count; i++) {
          const pfn = batch.pfns[i];
          const owner = channelOf(pfn, channels);
          if (owner !== channel) {
            throw new WireError(
              `BATCH frame at offset ${req.at} on channel ${channel} carries page ${pfn}, which belongs to channel ${owner} (of ${channels})`,
              req.at,
            );
          }
        }
      }
      // Return mode: the batch decodes straight into a given-back buffer
      // that holds all its pages (or a fresh one), which then goes to the
      // main thread whole: no copy of the pages.
      if (!memory) set!.takeScratch(pagesBuffer(batch.count * ps));
      gpu?.take();
      const decoded = gpu
        ? await set!.decodeOffloaded(req.payload, batch, gpu.offload)
        : set!.decode(req.payload, batch);
      // Halted while the GPU decoded: the pages the session counted are final.
      if (halted) return;
      const gpuPages = gpu?.take() ?? 0;
      const scratch = set!.scratch;
      if (memory) {
        for (let i = 0; i < batch.count; i++) {
          const pfn = batch.pfns[i];
          const s = decoded.slotOf[i];
          if (s < 0) {
            // Memory never written is already zero (as QEMU's destination
            // skips zero pages over fresh RAM).
            if (touched![pfn] === 1) {
              memory.fill(0, pfn * ps, (pfn + 1) * ps);
              touched![pfn] = 0;
            }
          } else {
            const page = scratch.subarray(s * ps, (s + 1) * ps);
            // A codec that spends bytes on a zero page (rle, lz4, zstd
            // without `zero` in front) still needs no write over memory
            // never written: no 4 KiB copy, no fresh memory committed.
            if (touched![pfn] === 0 && isZeroPage(page)) continue;
            memory.set(page, pfn * ps);
            touched![pfn] = 1;
          }
        }
        set!.applied(batch, decoded, zeroPage);
        applied += batch.count;
        const given = givenBack(req);
        post(
          connBytes ? { type: "progress", bytes: connBytes(), gpuPages } : {
            type: "applied",
            id: req.id,
            round: req.round,
            pages: batch.count,
            gpuPages,
            ...(given ? { payload: given } : {}),
          },
          given ? [given] : [],
        );
        return;
      }
      if (shadow) {
        for (let i = 0; i < batch.count; i++) {
          const s = decoded.slotOf[i];
          shadow.write(
            batch.pfns[i],
            s < 0 ? zeroPage : scratch.subarray(s * ps, (s + 1) * ps),
          );
        }
      }
      set!.applied(batch, decoded, zeroPage);
      applied += batch.count;
      const counts = new Map<number, number>();
      for (let i = 0; i < batch.count; i++) {
        const id = decoded.codecOf[i];
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      // The scratch goes (the set decodes the next batch into another).
      const pages = set!.takeScratch();
      const pfns = batch.pfns.slice(0, batch.count);
      const slot = decoded.slotOf.slice(0, batch.count);
      const given = givenBack(req);
      const transfer: Transferable[] = [
        pages.buffer as ArrayBuffer,
        pfns.buffer,
        slot.buffer,
      ];
      if (given) transfer.push(given);
      post({
        type: "pages",
        id: req.id,
        round: req.round,
        count: batch.count,
        pfns,
        slot,
        pages,
        claims: [...counts],
        gpuPages,
        ...(given ? { payload: given } : {}),
      }, transfer);
      return;
    }
    case "sync":
      post({ type: "synced", id: req.id, applied });
      return;
    case "listen":
      listen(req).catch((e) => {
        if (halted) return;
        if (e instanceof ChannelLost) {
          post({ type: "lost", message: e.message });
        } else fail(e);
      });
      return;
    case "go":
      go?.();
      return;
    case "halt":
      halted = true;
      hangUp?.();
      go?.();
      return;
    case "buffer":
      free.keep(req.buffer);
      return;
    case "digest": {
      // Pages never written with non-zero bytes are zero: their ranges
      // need no reading.
      const digests = rangeDigests(
        memory!,
        req.rangeBytes,
        req.from,
        req.to,
        touched ? { touched, pageSize: init!.pageSize } : undefined,
        { scheme: req.scheme, step: req.step },
      );
      post({ type: "digest", id: req.id, digests }, [
        digests.buffer as ArrayBuffer,
      ]);
      return;
    }
  }
}

function fail(err: unknown): void {
  if (failed) return;
  failed = true;
  post(workerError(err));
}

/** The channel's connection was lost: the link's failure, reported as "lost". */
class ChannelLost extends WireError {}

/** Per-channel connection: takes the channel's connection, then reads and applies its frames. */
async function listen(
  req: Extract<DecodeRequest, { type: "listen" }>,
): Promise<void> {
  const { port, joined, stop } = await listenForJoin(
    req.options,
    (message) => post({ type: "refused", message }),
  );
  hangUp = stop;
  if (halted) stop();
  post({ type: "listening", port });
  const j = await joined;
  hangUp = () => {
    try {
      j.conn.close();
    } catch { /* closed */ }
  };
  if (halted) return hangUp();
  post({ type: "joined", remote: j.conn.remote });
  await serve(j, req.frameTimeoutMs);
}

/** Waits for the main thread's "go". */
function goAhead(): Promise<void> {
  return new Promise<void>((r) => go = r);
}

/**
 * Reads channel frames from the joined connection until the channel's
 * final ROUND_END: each CODEC and ROUND_END is shown to the main thread
 * (codec state limits, round accounting) before anything after it is read;
 * each BATCH is applied here, as one from the main thread would be.
 */
async function serve(j: JoinedConn, frameMs: number): Promise<void> {
  const { reader } = j;
  const ch = init!.channel;
  connBytes = () => reader.bytesRead;
  for (;;) {
    const frame = await within(
      reader.next().catch((e: unknown) => {
        // A cut inside a frame, a reset: name the channel it hit. A frame
        // that is malformed on a link still open is the source's fault.
        const message = e instanceof Error ? e.message : String(e);
        const lost = !(e instanceof WireError) || reader.ended;
        throw new (lost ? ChannelLost : WireError)(
          `Channel ${ch}'s connection was lost (${reader.bytesRead} bytes read): ${message}`,
          e instanceof WireError ? e.offset : reader.bytesRead,
          { cause: e },
        );
      }),
      frameMs,
      () =>
        new WireError(
          `No frame within ${frameMs} ms on channel ${ch}'s connection (${reader.bytesRead} bytes read): the source is idle or too slow`,
          reader.bytesRead,
        ),
    );
    if (halted) return;
    if (frame === null) {
      throw new ChannelLost(
        `Channel ${ch}'s connection closed before its last round (${reader.bytesRead} bytes read)`,
        reader.bytesRead,
      );
    }
    const at = reader.bytesRead - HEADER_BYTES - frame.length;
    const name = frameTypeName(frame.type);
    if (
      frame.type !== FrameType.CODEC && frame.type !== FrameType.BATCH &&
      frame.type !== FrameType.ROUND_END
    ) {
      throw new WireError(
        `Unexpected ${name} frame at offset ${at} of channel ${ch}'s connection: it carries CODEC, BATCH and ROUND_END only`,
        at,
      );
    }
    if (frame.channel !== ch) {
      throw new WireError(
        `${name} frame at offset ${at} of channel ${ch}'s connection is for channel ${frame.channel}`,
        at + 3,
      );
    }
    if (frame.type === FrameType.BATCH) {
      await handle({
        type: "batch",
        id: 0,
        round: frame.round,
        payload: frame.payload,
        at,
      });
      continue;
    }
    if (frame.type === FrameType.CODEC) {
      const setup = decodeCodec(frame.payload);
      const answered = goAhead();
      post({ type: "codecAsk", setup, at });
      await answered;
      if (halted) return;
      await handle({ type: "codec", setup, at });
      continue;
    }
    const end = decodeRoundEnd(frame.payload);
    if (end.round !== frame.round) {
      throw new WireError(
        `ROUND_END frame at offset ${at} of channel ${ch}'s connection is inconsistent: its JSON says round "${end.round}", its header round ${frame.round}`,
        at,
      );
    }
    const answered = goAhead();
    post({ type: "roundEnd", end, at });
    await answered;
    if (halted) return;
    // Nothing after the last round is read, let alone applied.
    if (end.final) return;
  }
}

/** The requests so far, each handled once the one before it is done. */
let queue: Promise<void> = Promise.resolve();

self.onmessage = (e: MessageEvent<DecodeRequest>) => {
  const req = e.data;
  queue = queue.then(async () => {
    if (failed) return;
    try {
      await handle(req);
    } catch (err) {
      fail(err);
    }
  });
};
