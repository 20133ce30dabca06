/**
 * Units for policies: sizes in bytes, rates in bytes per second, durations
 * in milliseconds; parsers for the strings a CLI user types. The formatters
 * (`formatBytes`, `formatRate`, `formatDuration`) are the engine's, re-exported
 * so that policies, explain() and reports print numbers the same way.
 *
 * Sizes are binary (KiB = 1024 B). Link rates are decimal, as network links
 * are sold: 1 Gbit/s = 1e9 / 8 B/s, 1 MB/s = 1e6 B/s.
 *
 * @module
 */

import { PolicyError } from "./errors.ts";

/**
 * Kibibytes to bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KiB } from "@hakobu/hakobu";
 *
 * assert.equal(KiB(4), 4096);
 * ```
 */
export function KiB(n: number): number {
  return n * 1024;
}

/**
 * Mebibytes to bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MiB } from "@hakobu/hakobu";
 *
 * assert.equal(MiB(64), 67_108_864);
 * ```
 */
export function MiB(n: number): number {
  return n * 1024 ** 2;
}

/**
 * Gibibytes to bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GiB } from "@hakobu/hakobu";
 *
 * assert.equal(GiB(1), 1_073_741_824);
 * ```
 */
export function GiB(n: number): number {
  return n * 1024 ** 3;
}

/**
 * Tebibytes to bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TiB } from "@hakobu/hakobu";
 *
 * assert.equal(TiB(1), 1_099_511_627_776);
 * ```
 */
export function TiB(n: number): number {
  return n * 1024 ** 4;
}

/**
 * Kilobits per second to bytes per second.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kbit } from "@hakobu/hakobu";
 *
 * assert.equal(kbit(8), 1000); // bytes per second
 * ```
 */
export function kbit(n: number): number {
  return (n * 1e3) / 8;
}

/**
 * Megabits per second to bytes per second.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Mbit } from "@hakobu/hakobu";
 *
 * assert.equal(Mbit(100), 12_500_000); // bytes per second
 * ```
 */
export function Mbit(n: number): number {
  return (n * 1e6) / 8;
}

/**
 * Gigabits per second to bytes per second.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Gbit } from "@hakobu/hakobu";
 *
 * assert.equal(Gbit(1), 125_000_000); // bytes per second
 * ```
 */
export function Gbit(n: number): number {
  return (n * 1e9) / 8;
}

/**
 * Kilobytes per second (decimal) to bytes per second.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KBps } from "@hakobu/hakobu";
 *
 * assert.equal(KBps(1), 1000);
 * ```
 */
export function KBps(n: number): number {
  return n * 1e3;
}

/**
 * Megabytes per second (decimal) to bytes per second.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MBps } from "@hakobu/hakobu";
 *
 * assert.equal(MBps(125), 125_000_000);
 * ```
 */
export function MBps(n: number): number {
  return n * 1e6;
}

/**
 * Gigabytes per second (decimal) to bytes per second.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GBps } from "@hakobu/hakobu";
 *
 * assert.equal(GBps(1), 1_000_000_000);
 * ```
 */
export function GBps(n: number): number {
  return n * 1e9;
}

/**
 * Milliseconds (the DSL's duration unit, so this is the identity; it makes policies read well).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ms } from "@hakobu/hakobu";
 *
 * assert.equal(ms(300), 300);
 * ```
 */
export function ms(n: number): number {
  return n;
}

/**
 * Seconds to milliseconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { seconds } from "@hakobu/hakobu";
 *
 * assert.equal(seconds(5), 5000); // milliseconds
 * ```
 */
export function seconds(n: number): number {
  return n * 1000;
}

/**
 * Minutes to milliseconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { minutes } from "@hakobu/hakobu";
 *
 * assert.equal(minutes(10), 600_000); // milliseconds
 * ```
 */
export function minutes(n: number): number {
  return n * 60_000;
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};

const RATE_UNITS: Readonly<Record<string, number>> = {
  "bit": 1 / 8,
  "kbit": 1e3 / 8,
  "Mbit": 1e6 / 8,
  "Gbit": 1e9 / 8,
  "Tbit": 1e12 / 8,
  "B/s": 1,
  "KB/s": 1e3,
  "MB/s": 1e6,
  "GB/s": 1e9,
  "KiB/s": 1024,
  "MiB/s": 1024 ** 2,
  "GiB/s": 1024 ** 3,
};

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
};

const NUMBER_AND_UNIT = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z/]*)\s*$/;

function _split(text: string): [number, string] | undefined {
  const m = NUMBER_AND_UNIT.exec(text);
  if (!m) return undefined;
  return [Number(m[1]), m[2]];
}

/**
 * Parses a memory size such as `"1GiB"`, `"512MiB"`, `"1.5GiB"` or `"4096"`
 * (plain bytes) into bytes, rounded to a whole byte.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSize } from "@hakobu/hakobu";
 *
 * assert.equal(parseSize("512MiB"), 536_870_912);
 * ```
 *
 * @throws {PolicyError} (field `"size"`) when the string is not a number followed by a binary unit.
 */
export function parseSize(text: string): number {
  const parts = _split(text);
  const scale = parts ? SIZE_UNITS[parts[1]] : undefined;
  if (!parts || scale === undefined) {
    throw new PolicyError(
      "size",
      `Cannot parse size "${text}": expected a number followed by KiB, MiB, GiB or TiB (or plain bytes), e.g. "512MiB"`,
    );
  }
  return Math.round(parts[0] * scale);
}

/**
 * Parses a link rate such as `"1Gbit"`, `"100Mbit/s"`, `"125MB/s"` or
 * `"64MiB/s"` into bytes per second; `"unlimited"` gives `null` (unpaced).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBandwidth } from "@hakobu/hakobu";
 *
 * assert.equal(parseBandwidth("1Gbit"), 125_000_000);
 * assert.equal(parseBandwidth("unlimited"), null);
 * ```
 *
 * @throws {PolicyError} (field `"bandwidth"`) when the string has no known unit or the rate is zero.
 */
export function parseBandwidth(text: string): number | null {
  if (text.trim() === "unlimited") return null;
  const parts = _split(text);
  const unit = parts?.[1].replace(/^([kMGT]?bit)\/s$/, "$1") ?? "";
  const scale = parts ? RATE_UNITS[unit] : undefined;
  if (!parts || scale === undefined) {
    throw new PolicyError(
      "bandwidth",
      `Cannot parse bandwidth "${text}": expected a number followed by bit/s or B/s units (kbit, Mbit, Gbit, MB/s, MiB/s, ...) or "unlimited", e.g. "1Gbit"`,
    );
  }
  if (parts[0] === 0) {
    throw new PolicyError(
      "bandwidth",
      `Cannot parse bandwidth "${text}": a rate must be positive: pass "unlimited" for an unpaced link`,
    );
  }
  return parts[0] * scale;
}

/**
 * Parses a duration such as `"300ms"`, `"5s"`, `"2m"` (or `"2min"`) or `"1h"`
 * into milliseconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDuration } from "@hakobu/hakobu";
 *
 * assert.equal(parseDuration("2m"), 120_000);
 * ```
 *
 * @throws {PolicyError} (field `"duration"`) when the string is not a number followed by ms, s, m or h.
 */
export function parseDuration(text: string): number {
  const parts = _split(text);
  const scale = parts ? DURATION_UNITS[parts[1]] : undefined;
  if (!parts || scale === undefined) {
    throw new PolicyError(
      "duration",
      `Cannot parse duration "${text}": expected a number followed by ms, s, m or h, e.g. "300ms"`,
    );
  }
  return parts[0] * scale;
}

export { formatBytes, formatDuration, formatRate } from "../engine/format.ts";
