import assert from "node:assert/strict";
import { concatBytes } from "../bytes.ts";
import { firmwareStream } from "../qemu/stream/_fixture.ts";
import { qemuFormat } from "./qemu_format.ts";
import type { StreamEvent } from "./format.ts";

const fixture = firmwareStream();

/** Every event's bytes, copied, in order: the stream they stand for. */
function bytesOf(e: StreamEvent): Uint8Array[] {
  return e.kind === "pages"
    ? [e.head.slice(), e.data.slice()]
    : [e.bytes.slice()];
}

for (const chunk of [1 << 20, 65536, 4099, 777]) {
  Deno.test(`qemuFormat: back-to-back ZERO records go as one zero event, and the events are the stream (chunks of ${chunk})`, () => {
    const parser = qemuFormat.createParser();
    const parts: Uint8Array[] = [];
    let zeroPages = 0;
    let zeroEvents = 0;
    let pages = 0;
    for (let at = 0; at < fixture.length; at += chunk) {
      for (const e of parser.push(fixture.subarray(at, at + chunk))) {
        parts.push(...bytesOf(e));
        if (e.kind === "zero") {
          zeroPages += e.pages;
          zeroEvents++;
          // 9 bytes per ZERO record with CONTINUE (8 of header, the fill)
          assert.ok(e.bytes.length >= 9 * e.pages);
        } else if (e.kind === "pages") pages += e.pfns.length;
      }
    }
    for (const e of parser.finish()) parts.push(...bytesOf(e));
    assert.deepEqual(concatBytes(parts), fixture);
    assert.equal(zeroPages, 16465);
    assert.equal(pages, 49);
    // runs, not pages: at most one per run between PAGE records and chunk ends
    assert.ok(
      zeroEvents <= 2 * pages + 2 + Math.ceil(fixture.length / chunk),
      `${zeroEvents} zero events`,
    );
  });
}
