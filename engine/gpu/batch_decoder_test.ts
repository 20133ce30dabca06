import assert from "node:assert/strict";
import fc from "fast-check";
import { CodecError } from "../errors.ts";
import { delta } from "../codecs/delta.ts";
import { rle } from "../codecs/rle.ts";
import { bytesFrom, gpu, hasAdapter } from "./_testing.ts";
import { GpuBatchDecoder } from "./batch_decoder.ts";

function fromHex(s: string): Uint8Array {
  return new Uint8Array(
    s.split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16)),
  );
}

function rleEncode(page: Uint8Array): Uint8Array {
  const enc = rle.createEncoder!({
    pageSize: page.length,
    pageCount: 1,
    options: {},
  });
  const out = new Uint8Array(page.length);
  const n = enc.encode(0, page, out);
  assert.ok(n >= 0);
  return out.slice(0, n);
}

function deltaEncode(old: Uint8Array, cur: Uint8Array): Uint8Array | null {
  const enc = delta.createEncoder!({
    pageSize: cur.length,
    pageCount: 1,
    options: {},
  });
  enc.sent?.(0, old, 0); // bulk pass: not cached
  enc.sent?.(0, old, 0); // re-sent: cached
  const out = new Uint8Array(cur.length);
  const n = enc.encode(0, cur, out);
  return n < 0 ? null : out.slice(0, n);
}

/** Whether the CPU decoder rejects `input`. */
function cpuRejects(
  codec: "rle" | "delta",
  input: Uint8Array,
  pageSize: number,
  old?: Uint8Array,
): boolean {
  const c = codec === "rle" ? rle : delta;
  const dec = c.createDecoder!({
    pageSize,
    pageCount: 1,
    options: {},
    current: () => old ?? new Uint8Array(pageSize),
  });
  try {
    dec.decode(0, input, new Uint8Array(pageSize));
    return false;
  } catch (e) {
    assert.ok(e instanceof CodecError);
    return true;
  }
}

Deno.test({
  name: "rle_decode: batches of 1, 3 and 257 pages decode to the pages",
  ignore: !hasAdapter,
  async fn() {
    const dec = new GpuBatchDecoder(gpu!.device, { pageSize: 4096 });
    for (const n of [1, 3, 257]) {
      const pages: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        const p = new Uint8Array(4096);
        if (i % 3 === 1) p.fill(i);
        if (i % 3 === 2) p.set(bytesFrom(i, 1500), (i * 17) % 2000);
        pages.push(p);
      }
      const got = await dec.decode(
        "rle",
        pages.map((_, i) => i),
        pages.map(rleEncode),
      );
      pages.forEach((p, i) =>
        assert.deepEqual(got.subarray(i * 4096, i * 4096 + 4096), p)
      );
    }
  },
});

Deno.test({
  name:
    "rle_decode: flags every malformed golden input with the CPU decoder's CodecError",
  ignore: !hasAdapter,
  async fn() {
    const dec = new GpuBatchDecoder(gpu!.device, { pageSize: 64 });
    const Z = "00 00 00 00";
    const bad = [
      "",
      "10 00 00",
      "00 00 00 00 00 00 00 00",
      "00 00 00 80",
      `11 00 00 00 ${Z}`,
      "10 00 00 00",
      `0f 00 00 00 ${Z}`,
      `0e 00 00 00 ${Z} 02 00 00 80 a1 a2 a3 a4`,
      `10 00 00 00 ${Z} 01 00 00 00 ${Z}`,
    ];
    const good = fromHex(`10 00 00 00 ${Z}`);
    for (const b of bad) {
      // A good page first: the error names the bad one (pfn 7).
      await assert.rejects(
        dec.decode("rle", [3, 7], [good, fromHex(b)]),
        (e: unknown) =>
          e instanceof CodecError && /page 7/.test((e as Error).message),
        b,
      );
    }
  },
});

Deno.test({
  name:
    "delta_decode: golden and random deltas decode against the current page",
  ignore: !hasAdapter,
  async fn() {
    const olds: Uint8Array[] = [];
    const curs: Uint8Array[] = [];
    for (let i = 0; i < 67; i++) {
      const old = i % 2 ? new Uint8Array(4096) : bytesFrom(i + 3, 4096);
      const cur = old.slice();
      if (i % 5 === 1) cur[1001] = 1;
      if (i % 5 === 2) cur.set(bytesFrom(i, 200), i * 11);
      if (i % 5 === 3) { for (let b = 0; b < 4096; b += 7) cur[b] ^= 3; }
      olds.push(old);
      curs.push(cur);
    }
    const inputs = curs.map((c, i) => deltaEncode(olds[i], c)!);
    const dec = new GpuBatchDecoder(gpu!.device, {
      pageSize: 4096,
      current: (pfn) => olds[pfn],
    });
    const got = await dec.decode("delta", olds.map((_, i) => i), inputs);
    curs.forEach((c, i) =>
      assert.deepEqual(got.subarray(i * 4096, i * 4096 + 4096), c)
    );
  },
});

Deno.test({
  name:
    "delta_decode: flags every malformed golden input with the CPU decoder's CodecError",
  ignore: !hasAdapter,
  async fn() {
    const old = new Uint8Array(4096);
    const dec = new GpuBatchDecoder(gpu!.device, {
      pageSize: 4096,
      current: () => old,
    });
    const bad = [
      "00",
      "10 01 aa 10",
      "00 00",
      "01 01 ab 00 01 cd",
      "ff ff ff ff ff 01",
      "80",
      "00 81",
      "80 00 01 aa",
      "81 20 01 aa",
      "ff 1f 02 aa bb",
      "80 20 01 aa",
      "00 05 aa",
      "80 80 80 80 10 01 aa",
    ];
    for (const b of bad) {
      await assert.rejects(
        dec.decode("delta", [1, 2], [fromHex("00 01 ff"), fromHex(b)]),
        (e: unknown) =>
          e instanceof CodecError && /page 2/.test((e as Error).message),
        b,
      );
    }
    await assert.rejects(
      dec.decode("delta", [0], [new Uint8Array(4096)]),
      CodecError,
    );
  },
});

Deno.test({
  name:
    "decoders flag exactly the inputs the CPU decoders reject (mutated encodings, property)",
  ignore: !hasAdapter,
  async fn() {
    const ps = 256;
    const dec = new GpuBatchDecoder(gpu!.device, {
      pageSize: ps,
      current: () => new Uint8Array(ps),
    });
    const page = fc.array(fc.integer({ min: 0, max: 2 }), {
      minLength: ps,
      maxLength: ps,
    })
      .map((b) => new Uint8Array(b.map((x) => (x === 2 ? 0 : x))));
    const mutation = fc.array(
      fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      { minLength: 1, maxLength: 3 },
    );
    await fc.assert(
      fc.asyncProperty(page, mutation, fc.nat(8), async (p, muts, cut) => {
        for (const codec of ["rle", "delta"] as const) {
          let input = codec === "rle"
            ? (() => {
              const enc = rle.createEncoder!({
                pageSize: ps,
                pageCount: 1,
                options: {},
              });
              const out = new Uint8Array(ps);
              const n = enc.encode(0, p, out);
              return n < 0 ? new Uint8Array(0) : out.slice(0, n);
            })()
            : deltaEncode(new Uint8Array(ps), p) ?? new Uint8Array(0);
          input = input.slice(
            0,
            Math.max(0, input.length - (cut % 3 === 0 ? cut : 0)),
          );
          for (const m of muts) {
            if (input.length) input[m.at % input.length] = m.value;
          }
          const rejects = cpuRejects(codec, input, ps);
          let flagged = false;
          try {
            await dec.decode(codec, [0], [input]);
          } catch (e) {
            assert.ok(e instanceof CodecError);
            flagged = true;
          }
          assert.equal(flagged, rejects, `${codec} ${Array.from(input)}`);
        }
      }),
      { numRuns: 40 },
    );
  },
});
