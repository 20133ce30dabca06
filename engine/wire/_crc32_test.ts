import assert from "node:assert/strict";
import { crc32 as nodeCrc32 } from "node:zlib";
import {
  crc32,
  crc32Route,
  LIBZ_LARGE_BUDGET_BYTES,
  SMALL_BYTES,
} from "./_crc32.ts";

/** Runs `code` in a fresh deno with `args` and `env`; returns its stdout, stderr and exit code. */
async function runDeno(
  code: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  // `deno eval` grants every permission: run a file so `args` decide them.
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, code);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...args, file],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
  } finally {
    await Deno.remove(file);
  }
}

const CRC_URL = new URL("./_crc32.ts", import.meta.url).href;

/** Checks crc32 against node:zlib, then prints the route a large input took. */
const PROBE = `
import { crc32 as nodeCrc32 } from "node:zlib";
import { crc32, crc32Route } from "${CRC_URL}";
const big = new Uint8Array(1 << 20).map((_, i) => (i * 31) & 255);
const check = new TextEncoder().encode("123456789");
if (crc32(check) !== 0xcbf43926) throw new Error("check value");
if (crc32(big, 5) !== nodeCrc32(big, 5)) throw new Error("1 MiB");
console.log(JSON.stringify({ small: crc32Route(12).via, large: crc32Route(big.length).via }));
`;

Deno.test("crc32 equals node:zlib's for every size, offset and start", () => {
  const data = new Uint8Array(3 * SMALL_BYTES + 5);
  crypto.getRandomValues(data);
  const sizes = [0, 1, 12, SMALL_BYTES - 1, SMALL_BYTES, 3 * SMALL_BYTES];
  for (const size of sizes) {
    for (const offset of [0, 1, 5]) {
      const bytes = data.subarray(offset, offset + size);
      for (const start of [0, 0xdeadbeef]) {
        assert.equal(crc32(bytes, start), nodeCrc32(bytes, start));
      }
    }
  }
  // Chained over a split equals one pass.
  assert.equal(
    crc32(data.subarray(700), crc32(data.subarray(0, 700))),
    nodeCrc32(data),
  );
});

Deno.test("crc32 takes small inputs through libz always, large ones until its budget, then node:zlib", () => {
  assert.equal(crc32Route(12).via, "libz");
  assert.equal(crc32Route(SMALL_BYTES - 1).via, "libz");
  const big = new Uint8Array(4 << 20).map((_, i) => (i * 7) & 255);
  assert.equal(crc32Route(big.length).via, "libz");
  const expected = nodeCrc32(big);
  let sent = 0;
  while (crc32Route(big.length).via === "libz") {
    assert.equal(crc32(big), expected);
    sent += big.length;
    assert.ok(sent <= LIBZ_LARGE_BUDGET_BYTES + big.length, "it switches");
  }
  assert.ok(sent >= LIBZ_LARGE_BUDGET_BYTES, `libz took ${sent} bytes`);
  assert.equal(crc32(big), expected); // node:zlib's
  assert.equal(crc32Route(big.length).nodeZlibLoaded, true);
  // Small ones stay with libz, cheaper per call.
  assert.equal(crc32Route(12).via, "libz");
});

Deno.test("crc32 without --allow-ffi: node:zlib computes it, and nothing prompts", async () => {
  const r = await runDeno(PROBE, ["--allow-read"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    small: "node:zlib",
    large: "node:zlib",
  });
});

Deno.test("crc32 where libz does not load (HAKOBU_LIBZ names a missing file): node:zlib computes it", async () => {
  const r = await runDeno(
    PROBE,
    ["--allow-read", "--allow-ffi", "--allow-env"],
    {
      HAKOBU_LIBZ: "/nonexistent/libz.so.1",
    },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    small: "node:zlib",
    large: "node:zlib",
  });
  // With it, libz takes both (the large one within its budget).
  const ok = await runDeno(PROBE, ["--allow-read", "--allow-ffi"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { small: "libz", large: "libz" });
});
