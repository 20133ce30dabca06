/**
 * The libxc migration stream (v2/v3): constants (`format.ts`), an
 * incremental parser with bounds checks (`parser.ts`), whole-stream
 * parse/rebuild and record encoders (`image.ts`), and
 * {@link XenStreamError} (`errors.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   DomainType,
 *   encodeImageHeader,
 *   encodePageData,
 *   encodeRecord,
 *   parseXenStream,
 *   rebuildXenStream,
 *   RecType,
 * } from "@hakobu/hakobu";
 *
 * const bytes = new Uint8Array([
 *   ...encodeImageHeader({
 *     version: 3,
 *     options: 0,
 *     ihdrReserved: [0, 0],
 *     domainType: DomainType.X86_PVH,
 *     pageShift: 12,
 *     dhdrReserved: 0,
 *     xenMajor: 4,
 *     xenMinor: 17,
 *   }),
 *   ...encodePageData({
 *     kind: "page_data",
 *     reserved: 0,
 *     entries: [{ pfn: 5, type: 0 }],
 *     pages: [new Uint8Array(4096).fill(1)],
 *   }),
 *   ...encodeRecord(RecType.END, new Uint8Array(0)),
 * ]);
 * // Byte-identical:
 * assert.deepEqual(rebuildXenStream(parseXenStream(bytes)), bytes);
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export * from "./format.ts";
export * from "./parser.ts";
export * from "./image.ts";
