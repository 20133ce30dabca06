/**
 * Number formatting shared by reports, progress lines and the CLI: binary
 * units for sizes, bit/s for link rates, adaptive units for durations.
 *
 * @module
 */

const SIZE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/**
 * Formats a byte count with binary units.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatBytes } from "@hakobu/hakobu";
 *
 * assert.equal(formatBytes(1536), "1.50 KiB");
 * assert.equal(formatBytes(512), "512 B");
 * ```
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < SIZE_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(2)} ${SIZE_UNITS[i]}`;
}

/**
 * Formats a byte rate as a link speed in bit/s (decimal units, as links are sold).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatRate } from "@hakobu/hakobu";
 *
 * assert.equal(formatRate(125_000_000), "1.00 Gbit/s");
 * assert.equal(formatRate(12_500), "100.0 kbit/s");
 * ```
 */
export function formatRate(bytesPerSecond: number): string {
  const bits = bytesPerSecond * 8;
  if (!Number.isFinite(bits)) return String(bits);
  if (bits >= 1e9) return `${(bits / 1e9).toFixed(2)} Gbit/s`;
  if (bits >= 1e6) return `${(bits / 1e6).toFixed(1)} Mbit/s`;
  if (bits >= 1e3) return `${(bits / 1e3).toFixed(1)} kbit/s`;
  return `${bits.toFixed(0)} bit/s`;
}

/**
 * Formats milliseconds as ms, s or min:s.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDuration } from "@hakobu/hakobu";
 *
 * assert.equal(formatDuration(1500), "1.50 s");
 * assert.equal(formatDuration(90_000), "1 min 30 s");
 * ```
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${((ms - m * 60_000) / 1000).toFixed(0)} s`;
}
