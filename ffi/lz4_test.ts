import assert from "node:assert/strict";
import { FfiError, openLibrary } from "./_library.ts";
import { liblz4, LZ4_LIBRARY, lz4Version, openLz4 } from "./lz4.ts";

/** Runs `code` in a fresh deno with `args` and `env`; returns its stderr and exit code. */
async function runDeno(
  code: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stderr: string }> {
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
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  } finally {
    await Deno.remove(file);
  }
}

const LZ4_URL = new URL("./lz4.ts", import.meta.url).href;

Deno.test("liblz4 loads and reports a 1.x version", () => {
  assert.match(lz4Version(), /^1\.\d+\.\d+$/);
  assert.equal(liblz4().LZ4_compressBound(4096), 4096 + 4096 / 255 + 16 | 0);
});

Deno.test("liblz4 compresses and safely decompresses a block", () => {
  const { LZ4_compress_default, LZ4_compress_fast, LZ4_decompress_safe } =
    liblz4();
  const src = new Uint8Array(4096);
  for (let i = 0; i < src.length; i++) src[i] = (i * 7) & 31;
  const dst = new Uint8Array(4200);
  const n = LZ4_compress_default(src, dst, src.length, dst.length);
  assert.ok(n > 0 && n < 4096);
  assert.equal(LZ4_compress_fast(src, dst, src.length, dst.length, 1), n);
  const back = new Uint8Array(4096);
  assert.equal(LZ4_decompress_safe(dst, back, n, back.length), 4096);
  assert.deepEqual(back, src);
  // A capacity too small is an error, not an overflow.
  const small = new Uint8Array(100);
  assert.ok(LZ4_decompress_safe(dst, small, n, small.length) < 0);
});

Deno.test("openLz4 with a missing path names the library, the path and the fix", () => {
  const e = (() => {
    try {
      openLz4("/nonexistent/liblz4.so.1");
    } catch (e) {
      return e;
    }
  })();
  assert.ok(e instanceof FfiError);
  assert.equal(e.library, "liblz4");
  assert.deepEqual(e.tried, ["/nonexistent/liblz4.so.1"]);
  assert.match(e.message, /Cannot load liblz4/);
  assert.match(e.message, /"\/nonexistent\/liblz4\.so\.1"/);
  assert.match(e.message, /HAKOBU_LIBLZ4/);
  assert.ok(e.cause instanceof Error);
});

Deno.test("candidates are tried in order and all are reported", () => {
  const e = (() => {
    try {
      openLibrary({ ...LZ4_LIBRARY, candidates: ["/no/a.so", "/no/b.so"] });
    } catch (e) {
      return e;
    }
  })();
  assert.ok(e instanceof FfiError);
  assert.deepEqual(e.tried, ["/no/a.so", "/no/b.so"]);
  assert.match(e.message, /"\/no\/a\.so".*"\/no\/b\.so"/s);
  assert.match(e.message, /apt-get install liblz4-1/);
});

Deno.test("HAKOBU_LIBLZ4=/nonexistent fails with a clear error in a fresh process", async () => {
  const r = await runDeno(
    `import { lz4Version } from "${LZ4_URL}"; lz4Version();`,
    ["-A"],
    { HAKOBU_LIBLZ4: "/nonexistent" },
  );
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /FfiError/);
  assert.match(r.stderr, /Cannot load liblz4: tried "\/nonexistent"/);
  assert.match(r.stderr, /check the path in HAKOBU_LIBLZ4/);
});

Deno.test("HAKOBU_LIBLZ4 pointing at the real library is used", async () => {
  const path = "/usr/lib/x86_64-linux-gnu/liblz4.so.1";
  try {
    Deno.statSync(path);
  } catch {
    return; // another distribution's layout: nothing to check here
  }
  const r = await runDeno(
    `import { lz4Version } from "${LZ4_URL}"; console.error(lz4Version());`,
    ["-A"],
    { HAKOBU_LIBLZ4: path },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^1\./);
});

Deno.test("without --allow-ffi the error says so", async () => {
  const r = await runDeno(
    `import { lz4Version } from "${LZ4_URL}"; lz4Version();`,
    ["--allow-read", "--allow-env"],
    {},
  );
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /Cannot load liblz4 from "liblz4\.so\.1": FFI is not allowed: run deno with --allow-ffi/,
  );
});
