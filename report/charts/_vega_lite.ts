/**
 * vega-lite's own types of what the builders write, so that `satisfies`
 * checks every chart against them while the public types stay plain JSON.
 *
 * @module
 */

import type { TopLevelSpec } from "vega-lite";

/** A vertically concatenated top-level specification. */
export type VlStack = Extract<TopLevelSpec, { vconcat: unknown }>;

/** One view of a {@link VlStack}. */
export type VlView = VlStack["vconcat"][number];
