/**
 * Pipeline overhead on a paced link: a migration with the `raw` codec of a
 * 64 MiB VM whose pages are all distinct and incompressible (the `unique`
 * workload, held still), over a loopback link paced to 1 Gbit/s, beside the
 * paced link alone moving the same bytes: the same number of wire bytes, in
 * frame-sized writes, through the same pacer onto a loopback TCP socket,
 * read to the end by a receiver that answers one byte once it has them all
 * (as READY ends a migration's last round). Both receivers run in a
 * process of their own (`_precopy_bench_receiver.ts`), as on another host:
 * the sender's main thread and the receiver's never wait for each other.
 *
 *   deno bench -A engine/precopy_bench.ts
 *
 * In one run it reports:
 * - (a) group "paced": the whole migration (HELLO to RESULT) against the
 *   link alone; the ratio `deno bench` prints is the pipeline's whole cost
 *   (1.00x would be a perfect pipeline with no start-up or verification).
 * - (b) printed after the benches, from the same runs: the wire throughput
 *   while pages flow (from the first BATCH frame written to the last) as a
 *   fraction of the paced rate, for the migration and for the link alone,
 *   and where the rest of the migration's time goes: each step of the
 *   session as the source's end of the connection saw it (medians).
 * - group "unpaced" (first): the same migration on an unpaced link.
 *
 * The migration's connection is tapped (a stream in between logs each frame
 * as its write resolves or as it is read); that stream's cost is in the
 * migration's figures, not the link's.
 *
 * @module
 */

import { codec, compile, Gbit, MiB, policy, when } from "../dsl/mod.ts";
import type {
  BenchReceiverReply,
  BenchReceiverRequest,
} from "./_precopy_bench_receiver.ts";
import { type Duplex, migrate } from "./precopy.ts";
import { SimVm } from "./sim/mod.ts";
import { Pacer } from "./transport/pacer.ts";
import { FrameType, frameTypeName, HEADER_BYTES } from "./wire/frame.ts";

const MEMORY = MiB(64);
const RATE = Gbit(1);
const PAGES_PER_FRAME = 256;

const vm = await SimVm.create({
  memoryBytes: MEMORY,
  workload: "unique",
  seed: 1,
  dirtyRate: 0,
});

// The receivers run in a process of their own, as on another host.
const receiver = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    new URL("./_precopy_bench_receiver.ts", import.meta.url).pathname,
  ],
  stdin: "piped",
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const requests = receiver.stdin.getWriter();
const replies = receiver.stdout.pipeThrough(new TextDecoderStream())
  .getReader();
let unread = "";

/** The receiver's next line, parsed. */
async function reply(): Promise<BenchReceiverReply> {
  for (;;) {
    const nl = unread.indexOf("\n");
    if (nl >= 0) {
      const line = unread.slice(0, nl);
      unread = unread.slice(nl + 1);
      const m = JSON.parse(line) as BenchReceiverReply;
      if ("error" in m) {
        throw new Error(`The bench's receiver failed: ${m.error}`);
      }
      return m;
    }
    const { value, done } = await replies.read();
    if (done) throw new Error("The bench's receiver exited");
    unread += value;
  }
}

/**
 * Asks the receiver to serve one connection; resolves with its port and a
 * promise of its verdict.
 */
async function receive(
  req: BenchReceiverRequest,
): Promise<{ port: number; done: Promise<boolean> }> {
  await requests.write(new TextEncoder().encode(JSON.stringify(req) + "\n"));
  const m = await reply();
  if (!("port" in m)) throw new Error("The bench's receiver sent no port");
  const done = reply().then((r) => "verified" in r && r.verified);
  done.catch(() => {});
  return { port: m.port, done };
}

/** One frame as it crossed the source's end of the connection. */
interface WireEvent {
  /** Frame type. */
  readonly type: number;
  /** Header and payload bytes. */
  readonly bytes: number;
  /** Milliseconds since the migration started: when its last byte was written or read. */
  readonly at: number;
}

/**
 * Follows frame boundaries in a byte stream cut into arbitrary chunks and
 * calls `onFrame` as each frame's last byte goes by.
 */
class FrameScanner {
  readonly #header = new Uint8Array(HEADER_BYTES);
  #headerBytes = 0;
  #payloadLeft = 0;
  #type = 0;
  #length = 0;
  readonly #onFrame: (type: number, bytes: number) => void;

  constructor(onFrame: (type: number, bytes: number) => void) {
    this.#onFrame = onFrame;
  }

  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#headerBytes < HEADER_BYTES) {
        const n = Math.min(HEADER_BYTES - this.#headerBytes, chunk.length - at);
        this.#header.set(chunk.subarray(at, at + n), this.#headerBytes);
        this.#headerBytes += n;
        at += n;
        if (this.#headerBytes < HEADER_BYTES) return;
        const view = new DataView(this.#header.buffer);
        this.#type = view.getUint8(2);
        this.#length = view.getUint32(8, true);
        this.#payloadLeft = this.#length;
      }
      const n = Math.min(this.#payloadLeft, chunk.length - at);
      this.#payloadLeft -= n;
      at += n;
      if (this.#payloadLeft === 0) {
        this.#onFrame(this.#type, HEADER_BYTES + this.#length);
        this.#headerBytes = 0;
      }
    }
  }
}

/** The source's end of `conn`, logging every frame written and read. */
function tapped(
  conn: Deno.Conn,
  t0: number,
  sent: WireEvent[],
  received: WireEvent[],
): Duplex {
  const writer = conn.writable.getWriter();
  const out = new FrameScanner((type, bytes) =>
    sent.push({ type, bytes, at: performance.now() - t0 })
  );
  const inb = new FrameScanner((type, bytes) =>
    received.push({ type, bytes, at: performance.now() - t0 })
  );
  return {
    writable: new WritableStream<Uint8Array>({
      async write(chunk) {
        await writer.write(chunk);
        out.push(chunk);
      },
      close: () => writer.close(),
      abort: (reason) => writer.abort(reason),
    }),
    readable: conn.readable.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          inb.push(chunk);
          controller.enqueue(chunk);
        },
      }),
    ),
  };
}

/** The moments of one migration, milliseconds from its start. */
interface Timeline {
  readonly totalMs: number;
  readonly wireBytes: number;
  /** The largest BATCH frame, header included. */
  readonly batchBytes: number;
  readonly hello: number;
  readonly welcome: number;
  readonly firstBatch: number;
  readonly lastBatch: number;
  /** Bytes written after the first BATCH frame, up to the last one. */
  readonly transferBytes: number;
  readonly final: number;
  readonly ready: number;
  readonly end: number;
  readonly result: number;
}

/** The median (the lower middle one for an even count). */
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1];
}

/** The time of the first (or last) event of `type`. */
function timeOf(
  events: readonly WireEvent[],
  type: number,
  last = false,
): number {
  const e = last
    ? events.findLast((x) => x.type === type)
    : events.find((x) => x.type === type);
  if (!e) throw new Error(`No ${frameTypeName(type)} frame crossed the link`);
  return e.at;
}

function timeline(
  totalMs: number,
  wireBytes: number,
  sent: readonly WireEvent[],
  received: readonly WireEvent[],
): Timeline {
  const firstBatch = timeOf(sent, FrameType.BATCH);
  const lastBatch = timeOf(sent, FrameType.BATCH, true);
  const transferBytes = sent.filter((e) =>
    e.at > firstBatch && e.at <= lastBatch
  ).reduce((n, e) => n + e.bytes, 0);
  return {
    totalMs,
    wireBytes,
    batchBytes: Math.max(
      ...sent.filter((e) => e.type === FrameType.BATCH).map((e) => e.bytes),
    ),
    hello: timeOf(sent, FrameType.HELLO),
    welcome: timeOf(received, FrameType.WELCOME),
    firstBatch,
    lastBatch,
    transferBytes,
    final: timeOf(sent, FrameType.FINAL),
    ready: timeOf(received, FrameType.READY),
    end: timeOf(sent, FrameType.END),
    result: timeOf(received, FrameType.RESULT),
  };
}

/** Migrates the VM once over loopback, paced at `bandwidth` (null: unpaced). */
async function migrateOnce(bandwidth: number | null): Promise<Timeline> {
  const plan = compile(
    policy("bench-raw").codec([codec.raw()]).switchover(when.rounds(1))
      .bandwidth(bandwidth).batchPages(PAGES_PER_FRAME),
  );
  const { port, done } = await receive({ type: "migration" });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const sent: WireEvent[] = [];
  const received: WireEvent[] = [];
  const t0 = performance.now();
  const report = await migrate({
    plan,
    source: vm,
    conn: tapped(conn, t0, sent, received),
  });
  const totalMs = performance.now() - t0;
  try {
    conn.close();
  } catch { /* closed by the session */ }
  const receiverVerified = await done;
  await vm.resume(); // migrate leaves the source paused; the next iteration migrates it again
  if (!report.verified || !receiverVerified) {
    throw new Error("benchmark migration did not verify");
  }
  return timeline(totalMs, report.wireBytes, sent, received);
}

/** One run of the link alone: the whole time and the throughput of its writes. */
interface LinkRun {
  readonly totalMs: number;
  /** Bytes written after the first write, up to the last, per millisecond of that span. */
  readonly transferBytes: number;
  readonly transferMs: number;
}

/**
 * Sends `total` bytes in `chunk`-sized writes through a pacer to a loopback
 * receiver that reads them all and answers one byte; resolves on that byte.
 */
async function pacedCopy(
  total: number,
  chunk: number,
  bytesPerSecond: number,
): Promise<LinkRun> {
  const { port, done } = await receive({ type: "bytes", total });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const t0 = performance.now();
  const pacer = new Pacer({ bytesPerSecond });
  const frame = new Uint8Array(chunk).fill(0xa5);
  let first = 0;
  let last = 0;
  let after = 0;
  for (let sent = 0; sent < total; sent += chunk) {
    const n = Math.min(chunk, total - sent);
    await pacer.take(n);
    let off = 0;
    while (off < n) off += await conn.write(frame.subarray(off, n));
    last = performance.now();
    if (sent === 0) first = last;
    else after += n;
  }
  const ack = new Uint8Array(1);
  if ((await conn.read(ack)) !== 1) {
    throw new Error("no answer from the link's receiver");
  }
  const totalMs = performance.now() - t0;
  conn.close();
  await done;
  return { totalMs, transferBytes: after, transferMs: last - first };
}

// Measure the wire bytes and frame size of one migration so the link-only
// baseline sends exactly as much, in writes of the same size.
const { wireBytes, batchBytes: frameBytes } = await migrateOnce(null);

const migrations: Timeline[] = [];
const links: LinkRun[] = [];

Deno.bench("migration, raw codec, incompressible 64 MiB VM, unpaced", {
  group: "unpaced",
  n: 5,
  warmup: 1,
}, async () => {
  await migrateOnce(null);
});

Deno.bench("paced 1 Gbit/s link alone, same bytes through a loopback socket", {
  group: "paced",
  baseline: true,
  n: 5,
  warmup: 1,
}, async () => {
  links.push(await pacedCopy(wireBytes, frameBytes, RATE));
});

Deno.bench("migration, raw codec, incompressible 64 MiB VM, 1 Gbit/s", {
  group: "paced",
  n: 5,
  warmup: 1,
}, async () => {
  migrations.push(await migrateOnce(RATE));
});

/** The lines printed after the benches: (b) and the steps of a migration. */
function summary(): string {
  if (migrations.length === 0 || links.length === 0) return "";
  const m = (f: (t: Timeline) => number) =>
    median(migrations.map(f)).toFixed(0);
  const migrationShare = median(
    migrations.map((t) =>
      t.transferBytes / ((t.lastBatch - t.firstBatch) / 1000) / RATE
    ),
  );
  const linkShare = median(
    links.map((l) => l.transferBytes / (l.transferMs / 1000) / RATE),
  );
  const whole = median(migrations.map((t) => t.totalMs));
  const alone = median(links.map((l) => l.totalMs));
  return [
    `wire throughput while pages flow (first to last BATCH frame written), ` +
    `share of the paced ${RATE * 8 / 1e9} Gbit/s, medians of ` +
    `${migrations.length} migrations and ${links.length} link runs:`,
    `  migration ${(migrationShare * 100).toFixed(1)}%, link alone ${
      (linkShare * 100).toFixed(1)
    }% (target: migration ≥ 95%)`,
    `whole migration ${whole.toFixed(0)} ms vs link alone ${
      alone.toFixed(0)
    } ms (${(whole / alone).toFixed(2)}x); its steps, ms from its start:`,
    `  HELLO written ${m((t) => t.hello)}, WELCOME read ${
      m((t) => t.welcome)
    }, first BATCH written ${m((t) => t.firstBatch)}, last BATCH ${
      m((t) => t.lastBatch)
    },`,
    `  FINAL written ${m((t) => t.final)}, READY read ${
      m((t) => t.ready)
    }, END written (source digest) ${
      m((t) => t.end)
    }, RESULT read (receiver digest) ${m((t) => t.result)}, resolved ${
      m((t) => t.totalMs)
    }`,
  ].join("\n");
}

globalThis.addEventListener("unload", () => {
  const text = summary();
  if (text) console.log(text);
  receiver.kill();
  vm.close();
});
