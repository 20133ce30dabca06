/**
 * `hakobu xen dirty-rate DOMID [--interval 1s] [--json]`: measures a Xen
 * domain's dirty rate through log-dirty CLEAN/PEEK (needs a dom0 and root).
 *
 * @module
 */

import { measureDirtyRate } from "../../engine/xen/dirty_rate.ts";

/** Options of `hakobu xen dirty-rate`. */
export interface XenDirtyRateOptions {
  /** Interval, e.g. `"1s"`, `"500ms"` (default 1s). */
  interval?: string;
  /** Print JSON. */
  json?: boolean;
}

/**
 * Parses `"1s"`, `"500ms"`, `"2"` (seconds) into milliseconds.
 *
 * @example
 * ```ts
 * parseInterval("500ms"); // 500
 * ```
 * @throws {RangeError} on anything else.
 */
export function parseInterval(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s)?$/.exec(s.trim());
  if (!m || Number(m[1]) <= 0) {
    throw new RangeError(
      `Cannot parse interval "${s}": expected a positive number followed by s or ms`,
    );
  }
  return m[2] === "ms" ? Number(m[1]) : Number(m[1]) * 1000;
}

/**
 * Runs `hakobu xen dirty-rate`; returns the exit code.
 *
 * @example
 * ```ts
 * await xenDirtyRateCli("7", { interval: "1s" }); // prints "domain 7: 1234 pages/s (4.8 MiB/s) over 1.00 s"
 * ```
 */
export async function xenDirtyRateCli(
  domid: string,
  options: XenDirtyRateOptions,
): Promise<number> {
  const id = Number(domid);
  if (!Number.isInteger(id) || id < 0 || id > 0x7fef) {
    console.error(`hakobu: Bad domain id "${domid}": expected 0..32751`);
    return 2;
  }
  try {
    const r = await measureDirtyRate(id, {
      intervalMs: parseInterval(options.interval ?? "1s"),
    });
    if (options.json) console.log(JSON.stringify(r));
    else {
      console.log(
        `domain ${id}: ${Math.round(r.pagesPerSecond)} pages/s (${
          (r.bytesPerSecond / 2 ** 20).toFixed(1)
        } MiB/s) over ${
          (r.intervalMs / 1000).toFixed(2)
        } s, ${r.dirtyPages} of ${r.pfns} pfns dirty`,
      );
    }
    return 0;
  } catch (e) {
    console.error(`hakobu: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
