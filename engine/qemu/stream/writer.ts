/**
 * The rebuilder: turns {@link QemuEvent}s back into the QEMU stream they
 * came from. Every event carries its exact bytes, so the property
 * `rebuildStream(parseAll(s))` equals `s` byte for byte holds for every
 * stream, recognised or not.
 *
 * @module
 */

import { concatBytes } from "../../bytes.ts";
import { QemuStreamError } from "./errors.ts";
import { type QemuEvent, QemuStreamParser } from "./parser.ts";

/**
 * The bytes an event stands for (a view; no copy).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { eventBytes } from "./writer.ts";
 *
 * const bytes = new Uint8Array([1, 2]);
 * assert.equal(eventBytes({ kind: "opaque", bytes }), bytes); // a view, no copy
 * ```
 */
export function eventBytes(event: QemuEvent): Uint8Array {
  return event.bytes;
}

/**
 * Writes the bytes of a RAM page record: its header, then the fill byte of a
 * ZERO record or the 4096 bytes of a PAGE record, into `out` at `at`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writePageRecord } from "./writer.ts";
 *
 * // A ZERO record: be64 (offset | CONTINUE | ZERO), then the fill byte.
 * const header8 = new Uint8Array([0, 0, 0, 0, 0, 0, 0x10, 0x22]);
 * const out = new Uint8Array(9);
 * assert.equal(writePageRecord(out, 0, header8, { zero: true, fill: 0 }), 9);
 * assert.throws(
 *   () => writePageRecord(out, 1, header8, { zero: true, fill: 0 }),
 *   /buffer/,
 * );
 * ```
 *
 * @returns The offset after the record.
 * @throws {QemuStreamError} when `out` is too short or a PAGE body is not 4096 bytes.
 */
export function writePageRecord(
  out: Uint8Array,
  at: number,
  header: Uint8Array,
  body: { zero: true; fill: number } | { zero: false; data: Uint8Array },
): number {
  const size = header.length + (body.zero ? 1 : body.data.length);
  if (!body.zero && body.data.length !== 4096) {
    throw new QemuStreamError(
      `Cannot write a PAGE record of ${body.data.length} bytes: expected 4096`,
      at,
    );
  }
  if (at + size > out.length) {
    throw new QemuStreamError(
      `Cannot write a ${size}-byte RAM record at ${at}: the buffer has ${out.length} bytes`,
      at,
    );
  }
  out.set(header, at);
  if (body.zero) out[at + header.length] = body.fill;
  else out.set(body.data, at + header.length);
  return at + size;
}

/**
 * Concatenates the bytes of `events` into one new buffer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseQemuStream, rebuildStream } from "@hakobu/hakobu";
 *
 * const gz = await Deno.open(
 *   new URL("./testdata/firmware-pc-64m.stream.gz", import.meta.url),
 * );
 * const stream = await new Response(
 *   gz.readable.pipeThrough(new DecompressionStream("gzip")),
 * ).bytes();
 * const events = parseQemuStream(stream);
 * assert.deepEqual(rebuildStream(events), stream); // byte for byte
 * ```
 */
export function rebuildStream(events: Iterable<QemuEvent>): Uint8Array {
  return concatBytes(Array.from(events, (e) => e.bytes));
}

/**
 * Parses a whole stream held in memory, pushed in chunks of `chunkBytes`
 * (default: all at once), with the parser options `strict` and `zeroRuns`.
 * Event views are copied, so they stay valid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseQemuStream } from "@hakobu/hakobu";
 *
 * const gz = await Deno.open(
 *   new URL("./testdata/firmware-pc-64m.stream.gz", import.meta.url),
 * );
 * const stream = await new Response(
 *   gz.readable.pipeThrough(new DecompressionStream("gzip")),
 * ).bytes();
 * const events = parseQemuStream(stream, { strict: true });
 * const setup = events.find((e) => e.kind === "ramSetup");
 * assert.equal(setup?.kind === "ramSetup" && setup.blocks[0].id, "pc.ram");
 * ```
 *
 * @throws {QemuStreamError} on a truncated or unparsable stream.
 */
export function parseQemuStream(
  stream: Uint8Array,
  options: { strict?: boolean; chunkBytes?: number; zeroRuns?: boolean } = {},
): QemuEvent[] {
  const parser = new QemuStreamParser({
    strict: options.strict,
    zeroRuns: options.zeroRuns,
  });
  const step = Math.max(1, options.chunkBytes ?? stream.length);
  const events: QemuEvent[] = [];
  for (let at = 0; at < stream.length; at += step) {
    for (const e of parser.push(stream.subarray(at, at + step))) {
      events.push(copyEvent(e));
    }
  }
  parser.finish();
  return events;
}

/**
 * A copy of `event` whose views point into its own buffer, so it outlives
 * the parser's next push.
 */
export function copyEvent(event: QemuEvent): QemuEvent {
  const bytes = event.bytes.slice();
  if (event.kind !== "page") return { ...event, bytes };
  return {
    ...event,
    bytes,
    data: event.zero ? event.data : bytes.subarray(event.headerLength),
  };
}
