import assert from "node:assert/strict";
import type { MigrationProgress } from "../engine/precopy.ts";
import { ProgressView } from "./progress.ts";

const HALF: MigrationProgress = {
  round: 2,
  final: false,
  pagesDone: 500,
  pagesTotal: 1000,
  wireBytes: 2 * 2 ** 20,
  elapsedMs: 1000,
  pageSize: 4096,
  sendRate: 4096 * 1000,
};

Deno.test("ProgressView on a terminal: one bar redrawn in place with pages, rate, wire bytes and ETA, cleared by done()", () => {
  const out: string[] = [];
  const view = new ProgressView({ tty: true, write: (s) => out.push(s) });
  view.update(HALF);
  view.update({ ...HALF, pagesDone: 1000 });
  view.done();
  assert.equal(out.length, 3);
  assert.equal(
    out[0],
    "\r\x1b[2Kround 2   [##############..............]  50% 500/1000 pages  32.8 Mbit/s  wire 2.00 MiB  ETA 500 ms",
  );
  assert.match(out[1], /\[#{28}\] 100% 1000\/1000 pages .* ETA 0\.00 ms$/);
  assert.equal(out[2], "\r\x1b[2K", "done() clears the line");
});

Deno.test("ProgressView in a pipe: a line per round, nothing to clear", () => {
  const out: string[] = [];
  const view = new ProgressView({ tty: false, write: (s) => out.push(s) });
  view.update(HALF);
  view.update({ ...HALF, pagesDone: 900 });
  view.update({ ...HALF, round: 3, final: true, pagesTotal: 12 });
  view.done();
  assert.deepEqual(out, [
    "round 2: 1000 pages to send\n",
    "stop-and-copy 3: 12 pages to send\n",
  ]);
});
