/**
 * The libxc migration stream (v2/v3): constants (`format.ts`), an
 * incremental parser with bounds checks (`parser.ts`), whole-stream
 * parse/rebuild and record encoders (`image.ts`), and
 * {@link XenStreamError} (`errors.ts`).
 *
 * @example
 * ```ts
 * import { parseXenStream, rebuildXenStream } from "./engine/xen/stream/mod.ts";
 * rebuildXenStream(parseXenStream(bytes)); // byte-identical
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export * from "./format.ts";
export * from "./parser.ts";
export * from "./image.ts";
