/**
 * Scale decisions shared by the charts: the unit an axis counts in, when an
 * axis turns logarithmic, and the round axis.
 *
 * @module
 */

import type { RoundReport } from "../../engine/report.ts";
import { roundLabel } from "../_words.ts";

/** A linear axis turns logarithmic when its largest bar is this many times its smallest. */
const LOG_RATIO = 20;

const SIZE_UNITS = [
  ["B", 1],
  ["KiB", 2 ** 10],
  ["MiB", 2 ** 20],
  ["GiB", 2 ** 30],
  ["TiB", 2 ** 40],
] as const;

/** An axis unit: its name and what a value is divided by to be in it. */
export interface AxisUnit {
  readonly name: string;
  readonly div: number;
}

/** The largest binary size unit that `max` bytes reach. */
export function sizeUnit(max: number): AxisUnit {
  let best: AxisUnit = { name: "B", div: 1 };
  for (const [name, div] of SIZE_UNITS) {
    if (max >= div) best = { name, div };
  }
  return best;
}

/** The largest decimal bit/s unit that `maxBytesPerSecond` reaches, as links are sold. */
export function rateUnit(maxBytesPerSecond: number): AxisUnit {
  const bits = maxBytesPerSecond * 8;
  if (bits >= 1e9) return { name: "Gbit/s", div: 1e9 / 8 };
  if (bits >= 1e6) return { name: "Mbit/s", div: 1e6 / 8 };
  if (bits >= 1e3) return { name: "kbit/s", div: 1e3 / 8 };
  return { name: "bit/s", div: 1 / 8 };
}

/**
 * True when bars of these values span decades: on a linear axis the small
 * ones would be invisible. A log axis cannot show zero, so any zero keeps it
 * linear.
 */
export function wantsLog(values: readonly number[]): boolean {
  const positive = values.filter((v) => v > 0);
  if (positive.length < 2 || positive.length !== values.length) return false;
  return Math.max(...positive) / Math.min(...positive) >= LOG_RATIO;
}

/** A bar label: one decimal below 100, none above. */
export function oneDecimal(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

/** The x encoding of the round axis, rounds in report order. */
export function roundAxis(rounds: readonly RoundReport[]): {
  readonly field: "label";
  readonly type: "ordinal";
  readonly sort: string[];
  readonly title: string;
  readonly axis: { readonly labelAngle: number };
} {
  return {
    field: "label",
    type: "ordinal",
    sort: rounds.map(roundLabel),
    title: "round",
    axis: { labelAngle: 0 },
  };
}
