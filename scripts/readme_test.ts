/**
 * The README's first two commands are the whole set-up: they name the Deno
 * that package.json pins, and `.ci/run` runs the test command the same way.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const pinned: string = JSON.parse(
  await Deno.readTextFile(new URL("package.json", ROOT)),
).devDependencies.deno;

Deno.test("README: the first two commands run the demo and the tests with the Deno package.json pins", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const block = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
  const commands = block.split("\n").filter((l) => l.trim() !== "")
    .map((l) => l.replace(/\s+#.*$/, ""));
  assert.deepEqual(commands, [
    `npx --yes deno@${pinned} task demo`,
    `npx --yes deno@${pinned} task test`,
  ]);
});

Deno.test(".ci/run runs the README's test command with package.json's Deno", async () => {
  const ci = await Deno.readTextFile(new URL(".ci/run", ROOT));
  assert.match(
    ci,
    /DENO="deno@\$\(node -p 'require\("\.\/package\.json"\)\.devDependencies\.deno'\)"/,
  );
  assert.match(ci, /npx --yes "\$DENO" task test/);
  assert.doesNotMatch(
    ci,
    /^\s*npm install/m,
    "no npm install before the README command",
  );
});
