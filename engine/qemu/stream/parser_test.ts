import assert from "node:assert/strict";
import fc from "fast-check";
import { firmwareStream } from "./_fixture.ts";
import { QemuStreamError } from "./errors.ts";
import { QemuStreamParser } from "./parser.ts";
import { parseQemuStream, rebuildStream } from "./writer.ts";
import { captureStream, cloudKernel, qemuBinary } from "./_capture.ts";

const fixture = firmwareStream();

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Parses in the chunk sizes given, rebuilds, and returns the event kinds. */
function roundTrip(
  stream: Uint8Array,
  sizes: number[],
  strict = false,
): string[] {
  const parser = new QemuStreamParser({ strict });
  const parts: Uint8Array[] = [];
  const kinds: string[] = [];
  let at = 0;
  let i = 0;
  while (at < stream.length) {
    const n = Math.max(1, sizes[i++ % sizes.length]);
    for (const e of parser.push(stream.subarray(at, at + n))) {
      parts.push(e.bytes.slice());
      if (e.kind !== "opaque") kinds.push(e.kind);
    }
    at += n;
  }
  parser.finish();
  assert.ok(
    same(
      rebuildStream(parts.map((bytes) => ({ kind: "opaque", bytes }))),
      stream,
    ),
  );
  return kinds;
}

Deno.test("parser: firmware fixture parses strictly and rebuilds byte for byte", () => {
  const events = parseQemuStream(fixture, { strict: true });
  assert.ok(same(rebuildStream(events), fixture));
  const setup = events.find((e) => e.kind === "ramSetup");
  assert.ok(setup && setup.kind === "ramSetup");
  assert.deepEqual(setup.blocks.map((b) => b.id).slice(0, 3), [
    "pc.ram",
    "/rom@etc/acpi/tables",
    "pc.bios",
  ]);
  assert.equal(setup.blocks[0].usedLength, 64 << 20);
  const pages = events.filter((e) => e.kind === "page");
  assert.equal(pages.length, 16514); // 49 PAGE + 16465 ZERO (query-migrate said so)
  assert.equal(pages.filter((e) => e.kind === "page" && !e.zero).length, 49);
  assert.equal(events.filter((e) => e.kind === "eos").length, 3);
});

Deno.test("parser: any chunking gives the same events and bytes", () => {
  const whole = roundTrip(fixture, [fixture.length], true);
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 9000 }), {
        minLength: 1,
        maxLength: 20,
      }),
      (sizes) => {
        assert.deepEqual(roundTrip(fixture, sizes, true), whole);
      },
    ),
    { numRuns: 30 },
  );
  assert.deepEqual(roundTrip(fixture, [1, 2, 3, 4095, 4097]), whole);
});

Deno.test("parser: zeroRuns hands each run of ZERO records as one event, the same records and bytes under any chunking", () => {
  // The records one by one, as the parser gives them without zeroRuns.
  const zeros = parseQemuStream(fixture, { strict: true }).flatMap((e) =>
    e.kind === "page" && e.zero ? [{ pfn: e.pfn, length: e.bytes.length }] : []
  );
  assert.equal(zeros.length, 16465);
  const check = (sizes: number[]): number => {
    const parser = new QemuStreamParser({ strict: true, zeroRuns: true });
    const parts: Uint8Array[] = [];
    let record = 0;
    let runs = 0;
    let i = 0;
    for (let at = 0; at < fixture.length;) {
      const n = Math.max(1, sizes[i++ % sizes.length]);
      for (const e of parser.push(fixture.subarray(at, at + n))) {
        parts.push(e.bytes.slice());
        assert.ok(e.kind !== "page" || !e.zero, "no ZERO record on its own");
        if (e.kind !== "zeroRun") continue;
        runs++;
        assert.equal(e.firstPfn, zeros[record].pfn);
        let bytes = 0;
        for (let k = 0; k < e.pages; k++) bytes += zeros[record + k].length;
        assert.equal(e.bytes.length, bytes, "the run is its records' bytes");
        record += e.pages;
      }
      at += n;
    }
    parser.finish();
    assert.equal(record, zeros.length, "every ZERO record is in a run");
    assert.ok(same(concatParts(parts), fixture));
    return runs;
  };
  // Whole: a run per stretch of CONTINUE records (≈ 2 events per hundred
  // records, where there was one each).
  assert.ok(check([fixture.length]) < zeros.length / 50);
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 9000 }), {
        minLength: 1,
        maxLength: 20,
      }),
      (sizes) => void check(sizes),
    ),
    { numRuns: 30 },
  );
  check([1, 2, 3, 8, 9, 10, 4095, 4097]);
});

function concatParts(parts: Uint8Array[]): Uint8Array {
  return rebuildStream(parts.map((bytes) => ({ kind: "opaque", bytes })));
}

Deno.test("parser: a stream cut before its device state is a QemuStreamError naming the offset", () => {
  const parser = new QemuStreamParser();
  parser.push(fixture);
  const events = parseQemuStream(fixture);
  // The device state starts where the tail's first opaque event starts.
  let tailStart = 0;
  for (const e of events) {
    if (e.kind === "eos") tailStart += 0;
    tailStart += e.bytes.length;
    if (e === events.findLast((x) => x.kind === "eos")) break;
  }
  fc.assert(
    fc.property(fc.integer({ min: 0, max: tailStart }), (cut) => {
      try {
        parseQemuStream(fixture.subarray(0, cut));
        assert.fail(`cut at ${cut} parsed`);
      } catch (e) {
        assert.ok(e instanceof QemuStreamError, String(e));
        assert.match(e.message, /Truncated QEMU stream/);
        assert.ok(e.offset <= cut);
      }
    }),
    { numRuns: 200 },
  );
});

Deno.test("parser: garbage and mutated streams give a QemuStreamError or an exact rebuild", () => {
  const check = (bytes: Uint8Array, strict: boolean): void => {
    // With ZERO runs or without, the same verdict and the same bytes.
    const verdicts = [false, true].map((zeroRuns) => {
      try {
        const events = parseQemuStream(bytes, {
          strict,
          chunkBytes: 777,
          zeroRuns,
        });
        assert.ok(same(rebuildStream(events), bytes));
        return "rebuilt";
      } catch (e) {
        assert.ok(e instanceof QemuStreamError, String(e));
        return e.message;
      }
    });
    assert.equal(verdicts[0], verdicts[1]);
  };
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 2000 }),
      fc.boolean(),
      (b, strict) => check(b, strict),
    ),
    { numRuns: 300 },
  );
  const head = fixture.subarray(0, 64 * 1024);
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(fc.nat(head.length - 1), fc.integer({ min: 0, max: 255 })),
        { minLength: 1, maxLength: 8 },
      ),
      fc.boolean(),
      (edits, strict) => {
        const m = head.slice();
        for (const [at, v] of edits) m[at] = v;
        check(m, strict);
        const withTail = new Uint8Array(m.length + 1); // a FULL section makes it complete
        withTail.set(m);
        withTail[m.length] = 4;
        check(withTail, strict);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("parser: unknown RAM flags fall back to opaque, or throw in strict mode", () => {
  const m = fixture.slice();
  // First RAM record after the first PART header: find "02 00 00 00 02" after the setup.
  const part = m.findIndex((b, i) =>
    i > 100 && b === 2 && m[i + 4] === 2 && m[i + 1] === 0
  );
  m[part + 5 + 7] |= 0x80; // RDMA hook flag on the first record
  const events = parseQemuStream(m);
  assert.ok(same(rebuildStream(events), m));
  const p = new QemuStreamParser();
  p.push(m);
  assert.match(p.fallbackReason ?? "", /unsupported flags "0x082"/);
  assert.throws(() => parseQemuStream(m, { strict: true }), QemuStreamError);
  assert.throws(
    () => parseQemuStream(new Uint8Array(8)),
    /Not a QEMU migration stream/,
  );
});

const haveQemu = qemuBinary() !== null;

Deno.test({
  name:
    "parser: live captures (firmware and a running guest) parse and rebuild exactly",
  ignore: !haveQemu,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const fw = await captureStream();
    assert.ok(
      same(
        rebuildStream(parseQemuStream(fw, { strict: true, chunkBytes: 65536 })),
        fw,
      ),
    );
    if (!cloudKernel()) return;
    const guest = await captureStream({
      script: "dd if=/dev/urandom of=/dev/shm/x bs=1M count=8 2>/dev/null",
      memMiB: 128,
    });
    const events = parseQemuStream(guest, { strict: true, chunkBytes: 65536 });
    assert.ok(same(rebuildStream(events), guest));
    assert.ok(events.filter((e) => e.kind === "page" && !e.zero).length > 2048);
  },
});

Deno.test("parser: return-path COMMANDs before the RAM section (as libvirt's QEMU sends) stay delimited: the pages are still pages", () => {
  // the "ram" SECTION_START: 0x01, be32 id, len 3, "ram"
  let at = -1;
  for (let i = 8; i < fixture.length - 9 && at < 0; i++) {
    if (
      fixture[i] === 0x01 && fixture[i + 5] === 3 &&
      fixture[i + 6] === 0x72 && fixture[i + 7] === 0x61 &&
      fixture[i + 8] === 0x6d
    ) at = i;
  }
  assert.ok(at > 0, "the fixture has a ram section");
  const commands = new Uint8Array([
    ...[0x08, 0, 1, 0, 0], // MIG_CMD_OPEN_RETURN_PATH, no data
    ...[0x08, 0, 2, 0, 4, 0, 0, 0, 1], // MIG_CMD_PING 1
  ]);
  const stream = new Uint8Array(fixture.length + commands.length);
  stream.set(fixture.subarray(0, at));
  stream.set(commands, at);
  stream.set(fixture.subarray(at), at + commands.length);
  const pages = (s: Uint8Array) =>
    parseQemuStream(s).filter((e) => e.kind === "page").length;
  assert.ok(pages(fixture) > 0);
  assert.equal(pages(stream), pages(fixture));
  assert.ok(same(rebuildStream(parseQemuStream(stream)), stream));
  assert.deepEqual(
    roundTrip(stream, [1, 7, 4096]),
    roundTrip(stream, [stream.length]),
  );
});
