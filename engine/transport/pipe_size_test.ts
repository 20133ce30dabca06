import assert from "node:assert/strict";
import { growPipe } from "./pipe_size.ts";

Deno.test("growPipe raises a pipe's capacity (a child's stdin), and leaves a file alone", async () => {
  // The child reports the capacity of its own stdin pipe before and after.
  const script = `
    import { growPipe } from ${
    JSON.stringify(new URL("./pipe_size.ts", import.meta.url).href)
  };
    const lib = Deno.dlopen("libc.so.6", { fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" } });
    const before = lib.symbols.fcntl(0, 1032, 0);
    const grown = growPipe(0, 256 * 1024);
    const after = lib.symbols.fcntl(0, 1032, 0);
    console.log(JSON.stringify({ before, grown, after }));
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  await child.stdin.close();
  const out = await child.output();
  assert.equal(out.code, 0);
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(r.before, 65536);
  assert.equal(r.grown, 256 * 1024);
  assert.equal(r.after, 256 * 1024);

  const file = await Deno.makeTempFile();
  try {
    using f = await Deno.open(file);
    // a file descriptor that is no pipe (this process's opened file: fd 3 or above)
    const fds = [...Deno.readDirSync("/proc/self/fd")].map((e) =>
      Number(e.name)
    );
    const fileFd = fds.find((fd) => {
      try {
        return Deno.readLinkSync(`/proc/self/fd/${fd}`) === file;
      } catch {
        return false;
      }
    });
    assert.ok(fileFd !== undefined && f);
    assert.equal(growPipe(fileFd), null);
  } finally {
    await Deno.remove(file);
  }
});
