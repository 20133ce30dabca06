import assert from "node:assert/strict";
import { awaitAnswer, Ctl, SAB_BYTES } from "./_save_shared.ts";

/** A worker that plays the main thread: a stale notify first, the answer later. */
const PLAYER = `
self.onmessage = (e) => {
  const ctl = new Int32Array(e.data.sab, 0, 4);
  setTimeout(() => Atomics.notify(ctl, 0), 30);      // the previous request's late notify
  setTimeout(() => {
    Atomics.store(ctl, 1, e.data.answer);            // ANSWER
    Atomics.store(ctl, 0, 2);                        // STATE = ANSWERED
    Atomics.notify(ctl, 0);
  }, 200);
};
`;

Deno.test("awaitAnswer: a late notify of the previous request is not taken for this answer", () => {
  const sab = new SharedArrayBuffer(SAB_BYTES);
  const ctl = new Int32Array(sab, 0, 4);
  Atomics.store(ctl, Ctl.ANSWER, 0); // the previous request's answer
  Atomics.store(ctl, Ctl.STATE, Ctl.REQUEST);
  const url = URL.createObjectURL(
    new Blob([PLAYER], { type: "application/javascript" }),
  );
  const player = new Worker(url, { type: "module" });
  try {
    player.postMessage({ sab, answer: 1 });
    const t0 = performance.now();
    // blocks this thread, as the save worker blocks inside xc_domain_save
    assert.equal(awaitAnswer(ctl, 5000), 1);
    assert.ok(performance.now() - t0 >= 150, "returned on the stale notify");
  } finally {
    player.terminate();
    URL.revokeObjectURL(url);
  }
});

Deno.test("awaitAnswer: no answer within the time is null", () => {
  const ctl = new Int32Array(new SharedArrayBuffer(SAB_BYTES), 0, 4);
  Atomics.store(ctl, Ctl.STATE, Ctl.REQUEST);
  const t0 = performance.now();
  assert.equal(awaitAnswer(ctl, 50), null);
  assert.ok(performance.now() - t0 >= 45);
});

Deno.test("awaitAnswer: an answer already there is returned at once", () => {
  const ctl = new Int32Array(new SharedArrayBuffer(SAB_BYTES), 0, 4);
  Atomics.store(ctl, Ctl.ANSWER, 1);
  Atomics.store(ctl, Ctl.STATE, Ctl.ANSWERED);
  assert.equal(awaitAnswer(ctl, 5000), 1);
});
