/**
 * The device scripts run only on a borrowed GPU machine (and prepare.sh
 * downloads packages), so CI cannot run them; it checks that bash can parse
 * them and that gpu_check.sh stays within what the device tool brings back.
 */

import assert from "node:assert/strict";

const dir = new URL("./", import.meta.url).pathname;

for (const script of ["prepare.sh", "gpu_check.sh"]) {
  Deno.test(`device: bash parses ${script}`, async () => {
    const out = await new Deno.Command("bash", {
      args: ["-n", `${dir}${script}`],
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  });
}

Deno.test("device: gpu_check.sh writes at most 8 files to $OUT, as the device tool brings back, and its step limits fit its 570 s call", async () => {
  const text = await Deno.readTextFile(`${dir}gpu_check.sh`);
  const files = new Set(text.match(/\$out\/[a-z-]+\.(txt|json)/g));
  assert.ok(files.size >= 5 && files.size <= 8, [...files].join(", "));
  const limits = [...text.matchAll(/timeout (\d+) /g)].map((m) => Number(m[1]));
  assert.equal(limits.length, 3);
  assert.ok(limits.reduce((a, b) => a + b, 0) <= 540);
  assert.match(
    await Deno.readTextFile(`${dir}prepare.sh`),
    /timeout_s=570/,
  );
});
