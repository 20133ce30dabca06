/**
 * Verification that names what differs: a native migration (sim VM →
 * receive core with the sim memory sink) negotiates XXH3-128 per 1 MiB
 * range, verifies when memory arrived whole, and, when destination memory
 * is corrupted at known pages after every page was applied, reports exactly
 * those ranges and pages on both sides, with bounded lists. Peers that send
 * malformed or oversized verification messages are refused with errors
 * that say what was wrong.
 */

import assert from "node:assert/strict";
import { withDeadline } from "../_precopy_testing.ts";
import { policy, when } from "../../dsl/mod.ts";
import { digestBytes, XXH3_RANGE_BYTES } from "../digest.ts";
import { migrate } from "../precopy.ts";
import type { MigrationReport } from "../report.ts";
import { SimMemorySink, SimVm } from "../sim/mod.ts";
import { memoryMode, type MemoryResult } from "./memory_mode.ts";
import { receiveSession, type SessionOutcome } from "./receive_core.ts";
import {
  decodeDigestAsk,
  decodeError,
  decodeWelcome,
  encodeDigestAsk,
  encodeEnd,
  encodeFinal,
  encodeFrame,
  encodeHello,
  encodePageDigests,
  encodeWelcome,
  FrameReader,
  FrameType,
  FrameWriter,
  type Hello,
  MAX_PAGE_DIGESTS_PAYLOAD,
  memoryDuplex,
  PROTOCOL_VERSION,
  type WireConn,
} from "../wire/mod.ts";

const DEADLINE_MS = 60_000;
const PAGE = 4096;
const PAGES_PER_RANGE = XXH3_RANGE_BYTES / PAGE;

interface Run {
  readonly report: MigrationReport | Error;
  readonly outcome: SessionOutcome<MemoryResult> | Error;
  readonly sink: SimMemorySink;
  /** The pages corrupted, ascending. */
  readonly pages: readonly number[];
  /** Whether the source's VM was left paused. */
  readonly vmPaused: boolean;
}

/**
 * Migrates a sim VM of `mib` MiB (random content, no writes) into a sim
 * sink; the pages `pick` chooses from source memory (each must hold data
 * there) get one byte of destination memory flipped once every page is
 * applied, before hashing.
 */
async function run(
  mib: number,
  pick: (memory: Uint8Array) => number[] = () => [],
): Promise<Run> {
  await using vm = await SimVm.create({
    memoryBytes: mib << 20,
    workload: "random",
    dirtyRate: 0,
    seed: 7,
  });
  const corrupt = [...new Set(pick(vm.memory))].sort((a, b) => a - b);
  for (const p of corrupt) {
    assert.ok(
      vm.memory.subarray(p * PAGE, (p + 1) * PAGE).some((b) => b !== 0),
      `page ${p} should hold data at the source`,
    );
  }
  let sink: SimMemorySink | null = null;
  const [conn, destination] = memoryDuplex();
  const received = receiveSession(
    destination,
    memoryMode({
      createSink: (h) =>
        sink = new SimMemorySink({
          pageSize: h.pageSize,
          pageCount: h.memoryBytes / h.pageSize,
        }),
      beforeDigest: (s) => {
        const memory = new Uint8Array((s as SimMemorySink).shared.memory);
        for (const p of corrupt) memory[p * PAGE + 123] ^= 0x5a;
      },
    }),
  ).catch((e: Error) => e);
  const plan = policy("verify").switchover(when.rounds(1)).compile();
  const report = await withDeadline(
    migrate({ plan, source: vm, conn, channels: 2 }).catch((e: Error) => e),
    "the migration",
    DEADLINE_MS,
  );
  const outcome = await withDeadline(received, "the receiver", DEADLINE_MS);
  return {
    report,
    outcome,
    sink: sink!,
    pages: corrupt,
    vmPaused: vm.paused,
  };
}

function reportOf(r: Run): MigrationReport {
  if (r.report instanceof Error) throw r.report;
  return r.report;
}

function resultOf(r: Run): MemoryResult {
  if (r.outcome instanceof Error) throw r.outcome;
  assert.equal(r.outcome.aborted, false);
  return (r.outcome as { result: MemoryResult }).result;
}

Deno.test("verify: a clean migration negotiates xxh3-128, verifies and commits", async () => {
  const r = await run(6);
  const report = reportOf(r);
  const result = resultOf(r);
  assert.equal(report.verified, true, report.outcome);
  assert.equal(report.digestScheme, "xxh3-128");
  assert.equal(report.mismatch, undefined);
  assert.equal(result.verified, true);
  assert.equal(result.scheme, "xxh3-128");
  assert.equal(result.rangeBytes, XXH3_RANGE_BYTES);
  assert.deepEqual(result.mismatched, []);
  assert.deepEqual(result.mismatchedPages, []);
  assert.equal(report.digest, result.digest);
  assert.equal(r.sink.state, "committed");
  assert.equal(result.commit, true);
  assert.equal(r.vmPaused, true, "the VM stays paused at the source");
});

Deno.test("verify: destination memory corrupted at known pages: both sides name exactly those ranges and pages", async () => {
  // ranges of 256 pages: page 5 → 0; 300, 301 → 1; 1000 → 3
  const pages = [5, 300, 301, 1000];
  const r = await run(6, () => pages);
  const report = reportOf(r);
  const result = resultOf(r);
  assert.equal(report.verified, false);
  assert.equal(result.verified, false);
  assert.equal(r.sink.state, "discarded");
  // Under the commit protocol nothing was committed: the source's VM runs
  // on (a clean migration leaves it paused, its memory now the receiver's).
  assert.equal(result.commit, true, "the commit protocol was negotiated");
  assert.equal(r.vmPaused, false, "the VM resumed at the source");
  assert.deepEqual(result.mismatched, [0, 1, 3]);
  assert.equal(result.differingRanges, 3);
  assert.deepEqual(result.mismatchedPages, pages);
  assert.equal(result.differingPages, 4);
  assert.deepEqual(report.mismatch, {
    rangeBytes: XXH3_RANGE_BYTES,
    ranges: [0, 1, 3],
    differingRanges: 3,
    pages,
    differingPages: 4,
  });
  assert.match(
    report.outcome,
    /3 ranges of 1 MiB differ: 0, 1, 3; 4 pages differ in those ranges: 5, 300, 301, 1000$/,
  );
});

Deno.test("verify: the lists are bounded (64 ranges, 256 pages), the counts are whole", async () => {
  // The first page with data in each of 70 ranges, and 250 more in range 0.
  // (the "random" workload's data fills the first 77% of memory)
  const r = await run(96, (memory) => {
    const data = (p: number) =>
      memory.subarray(p * PAGE, (p + 1) * PAGE).some((b) => b !== 0);
    const pages: number[] = [];
    for (let r = 0; r < 70; r++) {
      let p = r * PAGES_PER_RANGE;
      while (!data(p)) assert.ok(++p < (r + 1) * PAGES_PER_RANGE);
      pages.push(p);
    }
    for (let p = pages[0] + 1; pages.length < 70 + 250; p++) {
      if (data(p)) pages.push(p);
    }
    return pages;
  });
  const pages = r.pages;
  const result = resultOf(r);
  const report = reportOf(r);
  assert.equal(result.verified, false);
  assert.equal(result.differingRanges, 70);
  assert.deepEqual(
    result.mismatched,
    Array.from({ length: 64 }, (_, i) => i),
  );
  // the pages of the 64 listed ranges: 251 in range 0, one in each other
  assert.equal(result.differingPages, 251 + 63);
  assert.ok(pages.slice(0, 251).every((p) => p < PAGES_PER_RANGE));
  assert.deepEqual(result.mismatchedPages, pages.slice(0, 256));
  assert.equal(report.mismatch?.differingRanges, 70);
  assert.equal(report.mismatch?.pages.length, 256);
  assert.match(
    report.outcome,
    /70 ranges of 1 MiB differ \(the first 64 of 70\)/,
  );
  assert.match(
    report.outcome,
    /314 pages differ in those ranges \(the first 256 of 314\)/,
  );
});

// --- hostile peers -------------------------------------------------------

function hello(over: Partial<Hello> = {}): Hello {
  return {
    protocol: PROTOCOL_VERSION,
    memoryBytes: 2 * XXH3_RANGE_BYTES,
    pageSize: PAGE,
    codecs: [{ id: 0, name: "raw" }, { id: 1, name: "zero" }],
    vm: "peer",
    policy: "p",
    channels: 1,
    verify: ["xxh3-128"],
    ...over,
  };
}

/** A receive session on one end; the test plays the source on the other. */
function serve(): {
  outcome: Promise<SessionOutcome<MemoryResult> | Error>;
  peer: WireConn;
  sink: () => SimMemorySink | null;
} {
  const [peer, local] = memoryDuplex();
  let sink: SimMemorySink | null = null;
  const outcome = receiveSession(
    local,
    memoryMode({
      createSink: (h) =>
        sink = new SimMemorySink({
          pageSize: h.pageSize,
          pageCount: h.memoryBytes / h.pageSize,
        }),
    }),
    { frameTimeoutMs: 5_000 },
  ).catch((e: Error) => e);
  return { outcome, peer, sink: () => sink };
}

/** Plays a source that sends nothing up to END: HELLO, FINAL, then `end`. */
async function source(
  peer: WireConn,
  end: Uint8Array,
): Promise<{ reader: FrameReader; writer: FrameWriter; verify?: string }> {
  const reader = new FrameReader(peer.readable);
  const writer = new FrameWriter(peer.writable);
  await writer.write(FrameType.HELLO, 0, encodeHello(hello()));
  const welcome = await reader.next();
  assert.equal(welcome?.type, FrameType.WELCOME);
  const { verify } = decodeWelcome(welcome!.payload);
  await writer.write(
    FrameType.FINAL,
    1,
    encodeFinal({ round: 1, pagesTotal: 0 }),
  );
  assert.equal((await reader.next())?.type, FrameType.READY);
  await writer.writeRaw(encodeFrame(FrameType.END, 1, end));
  return { reader, writer, verify };
}

/** The ERROR the receiver sent (reading past other frames), and its session's failure. */
async function refusal(
  served: ReturnType<typeof serve>,
  reader: FrameReader,
): Promise<{ sent: string; thrown: Error }> {
  let sent = "";
  for (;;) {
    const f = await withDeadline(reader.next(), "a frame", DEADLINE_MS)
      .catch(() => null);
    if (!f) break;
    if (f.type === FrameType.ERROR) sent = decodeError(f.payload).message;
  }
  const thrown = await served.outcome;
  assert.ok(thrown instanceof Error, "the session should have failed");
  return { sent, thrown };
}

const zeroRanges = (n: number, size = 16) =>
  encodeEnd(
    { rangeBytes: XXH3_RANGE_BYTES, ranges: new Uint8Array(n * size) },
    size,
  );

Deno.test("verify: an END whose ranges do not cover memory with the negotiated scheme is refused", async () => {
  const served = serve();
  // 3 ranges for 2 MiB of memory
  const { reader, verify } = await source(served.peer, zeroRanges(3));
  assert.equal(verify, "xxh3-128");
  const { sent, thrown } = await refusal(served, reader);
  assert.match(
    thrown.message,
    /END frame at offset \d+ carries 3 ranges of 1048576 bytes: "xxh3-128" verification of 2097152 bytes takes 2 ranges of 1048576 bytes/,
  );
  assert.equal(sent, thrown.message);
  assert.equal(served.sink()?.state, "discarded");
});

Deno.test("verify: an END of SHA-256-sized digests after xxh3-128 was negotiated is refused", async () => {
  const served = serve();
  const { reader } = await source(served.peer, zeroRanges(2, 32));
  const { thrown } = await refusal(served, reader);
  assert.match(
    thrown.message,
    /Cannot decode END: count "2" does not match its 80-byte payload of 16-byte digests/,
  );
});

/** A source whose END differs from the (all-zero) destination in both ranges. */
async function mismatching(served: ReturnType<typeof serve>) {
  const end = new Uint8Array(2 * 16).fill(0xee);
  const s = await source(
    served.peer,
    encodeEnd({ rangeBytes: XXH3_RANGE_BYTES, ranges: end }, 16),
  );
  const ask = await s.reader.next();
  assert.equal(ask?.type, FrameType.DIGEST_ASK);
  assert.deepEqual(decodeDigestAsk(ask!.payload).ranges, [0, 1]);
  return s;
}

Deno.test("verify: an oversized PAGE_DIGESTS is refused before it is compared", async () => {
  const served = serve();
  const { reader, writer } = await mismatching(served);
  const big = new Uint8Array(MAX_PAGE_DIGESTS_PAYLOAD + 16);
  new DataView(big.buffer).setUint32(0, 2, true);
  new DataView(big.buffer).setUint32(4, 16, true);
  await writer.write(FrameType.PAGE_DIGESTS, 0, big);
  const { sent, thrown } = await refusal(served, reader);
  assert.match(
    thrown.message,
    /Cannot decode PAGE_DIGESTS: \d+ bytes is over its limit of 262408/,
  );
  assert.equal(sent, thrown.message);
  assert.equal(served.sink()?.state, "discarded");
});

Deno.test("verify: a PAGE_DIGESTS for other ranges, or with too few digests, is refused", async () => {
  for (
    const [ranges, pages, re] of [
      [[0, 2], 512, /answers ranges 0, 2, but DIGEST_ASK asked for 0, 1/],
      [
        [0, 1],
        511,
        /carries 8176 bytes of 16-byte digests: expected 512 "xxh3-128" digests of 16 bytes/,
      ],
    ] as const
  ) {
    const served = serve();
    const { reader, writer } = await mismatching(served);
    await writer.write(
      FrameType.PAGE_DIGESTS,
      0,
      encodePageDigests({
        ranges,
        digestBytes: digestBytes("xxh3-128"),
        digests: new Uint8Array(pages * 16),
      }),
    );
    const { thrown } = await refusal(served, reader);
    assert.match(thrown.message, re);
  }
});

Deno.test("verify: PAGE_DIGESTS nobody asked for is refused", async () => {
  const served = serve();
  const reader = new FrameReader(served.peer.readable);
  const writer = new FrameWriter(served.peer.writable);
  await writer.write(FrameType.HELLO, 0, encodeHello(hello()));
  await reader.next();
  await writer.write(
    FrameType.PAGE_DIGESTS,
    0,
    encodePageDigests({
      ranges: [0],
      digestBytes: 16,
      digests: new Uint8Array(4096),
    }),
  );
  const { thrown } = await refusal(served, reader);
  assert.match(
    thrown.message,
    /Unexpected PAGE_DIGESTS frame at offset \d+: no DIGEST_ASK was sent/,
  );
});

Deno.test("verify: a HELLO offering too many schemes is refused", async () => {
  const served = serve();
  const reader = new FrameReader(served.peer.readable);
  const writer = new FrameWriter(served.peer.writable);
  await writer.write(
    FrameType.HELLO,
    0,
    encodeHello(
      hello({ verify: Array.from({ length: 9 }, (_, i) => `s${i}`) }),
    ),
  );
  const { thrown } = await refusal(served, reader);
  assert.match(
    thrown.message,
    /Cannot decode HELLO: field "verify" must be an array of at most 8 names/,
  );
});

/**
 * A receiver that accepts xxh3-128, takes the source's frames up to END,
 * then sends `ask` as DIGEST_ASK; resolves with the ERROR or ABORT it got.
 */
async function askingReceiver(conn: WireConn, ask: Uint8Array): Promise<void> {
  const reader = new FrameReader(conn.readable);
  const writer = new FrameWriter(conn.writable);
  for (;;) {
    const f = await reader.next();
    if (!f) return;
    if (f.type === FrameType.HELLO) {
      await writer.write(
        FrameType.WELCOME,
        0,
        encodeWelcome({
          protocol: PROTOCOL_VERSION,
          accepted: true,
          verify: "xxh3-128",
        }),
      );
    } else if (f.type === FrameType.FINAL) {
      await writer.write(
        FrameType.READY,
        0,
        new TextEncoder().encode('{"pagesApplied":0}'),
      );
    } else if (f.type === FrameType.END) {
      await writer.write(FrameType.DIGEST_ASK, 0, ask);
    } else if (f.type === FrameType.ABORT) {
      await writer.close().catch(() => {});
      return;
    }
  }
}

Deno.test("verify: the source refuses a DIGEST_ASK that is malformed or names ranges its memory does not have, and the VM runs on", async () => {
  for (
    const [ask, re] of [
      [
        encodeDigestAsk({ ranges: [1, 9] }),
        /DIGEST_ASK names range 9, but 2 ranges of 1048576 bytes cover this VM's memory/,
      ],
      [
        new TextEncoder().encode('{"ranges":[3,2]}'),
        /Cannot decode DIGEST_ASK: field "ranges" must be 1 to 64 range indexes .* strictly increasing/,
      ],
      [new TextEncoder().encode('{"ranges":[]}'), /Cannot decode DIGEST_ASK/],
    ] as const
  ) {
    await using vm = await SimVm.create({
      memoryBytes: 2 * XXH3_RANGE_BYTES,
      workload: "idle",
    });
    const [conn, other] = memoryDuplex();
    const receiver = askingReceiver(other, ask).catch(() => {});
    const plan = policy("p").switchover(when.rounds(1)).compile();
    const error = await withDeadline(
      migrate({ plan, source: vm, conn, channels: 1 }).then(
        () => assert.fail("the migration should have failed"),
        (e: Error) => e,
      ),
      "the migration",
      DEADLINE_MS,
    );
    assert.match(error.message, re);
    assert.equal(vm.paused, false);
    await receiver;
  }
});
