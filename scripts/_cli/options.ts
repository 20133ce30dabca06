/**
 * Option parsers shared by every entry point (`hakobu`, the tunnel, the
 * benches and the labs), so the same flag text is checked the same way
 * everywhere. Each is a commander argument parser: it takes the text the
 * user typed and returns the typed value, or throws commander's
 * `InvalidArgumentError` with the reason and the value in quotes; the
 * program then names the flag (`--channels: expected a whole number from 1
 * to 64, got "x"`, see `program.ts`).
 *
 * The values themselves are checked by plain functions where the engine or
 * the DSL needs the same check (`parseSize`, `parseAddress`, `codecByName`):
 * {@link parsed} turns such a function into a parser, and its message is
 * the reason.
 *
 * @module
 */

import { InvalidArgumentError } from "@commander-js/extra-typings";
import { parseBandwidth, parseDuration, parseSize } from "../../dsl/units.ts";
import { codecByName } from "../../engine/codecs/registry.ts";
import { type Address, parseAddress } from "../../engine/transport/address.ts";

/** A commander argument parser: the flag's text in, its typed value out. */
export type ArgParser<T> = (text: string) => T;

/**
 * A parser from a function that throws on bad text: its error message
 * becomes the reason commander reports (after the flag's name).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSize } from "../../dsl/units.ts";
 *
 * const mem = parsed(parseSize);
 * assert.equal(mem("1MiB"), 1048576);
 * assert.throws(() => mem("1 MB"), /Cannot parse size "1 MB"/);
 * ```
 */
export function parsed<T>(parse: (text: string) => T): ArgParser<T> {
  return (text) => {
    try {
      return parse(text);
    } catch (e) {
      throw new InvalidArgumentError(
        e instanceof Error ? e.message : String(e),
      );
    }
  };
}

/** Bounds of {@link integer}. */
export interface IntegerRange {
  /** Smallest value allowed (default 0). */
  readonly min?: number;
  /** Largest value allowed (default: none). */
  readonly max?: number;
}

/**
 * A whole number in `[min, max]`, written in decimal digits (`"1e3"`,
 * `"0x10"` and `""` are refused).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const channels = integer({ min: 1, max: 64 });
 * assert.equal(channels("8"), 8);
 * assert.throws(() => channels("x"), /expected a whole number from 1 to 64, got "x"/);
 * ```
 */
export function integer(range: IntegerRange = {}): ArgParser<number> {
  const min = range.min ?? 0;
  const max = range.max;
  const want = max === undefined
    ? `a whole number ≥ ${min}`
    : `a whole number from ${min} to ${max}`;
  return (text) => {
    const n = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
    if (
      !Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)
    ) {
      throw new InvalidArgumentError(`expected ${want}, got "${text}"`);
    }
    return n;
  };
}

/**
 * A finite number above 0, e.g. a rate in bytes per second; `unit` says what
 * it counts in the message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const rate = positiveNumber("bytes per second");
 * assert.equal(rate("125e6"), 125e6);
 * assert.throws(() => rate("0"), /expected bytes per second, a number above 0, got "0"/);
 * ```
 */
export function positiveNumber(unit: string): ArgParser<number> {
  return (text) => {
    const n = text.trim() === "" ? NaN : Number(text);
    if (!Number.isFinite(n) || n <= 0) {
      throw new InvalidArgumentError(
        `expected ${unit}, a number above 0, got "${text}"`,
      );
    }
    return n;
  };
}

/**
 * A percentage above 0 and at most 100, with or without `%`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(percent("85%"), 85);
 * assert.throws(() => percent("120"), /at most 100/);
 * ```
 */
export const percent: ArgParser<number> = (text) => {
  const n = Number(text.trim().replace(/%$/, "") || NaN);
  if (!(n > 0 && n <= 100)) {
    throw new InvalidArgumentError(
      `expected a percentage above 0 and at most 100, e.g. 85, got "${text}"`,
    );
  }
  return n;
};

/**
 * A memory size such as `512MiB` in bytes (`parseSize`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(size("1GiB"), 2 ** 30);
 * ```
 */
export const size: ArgParser<number> = parsed(parseSize);

/**
 * A link rate such as `1Gbit` in bytes per second, or null for
 * `unlimited` (`parseBandwidth`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(bandwidth("1Gbit"), 125e6);
 * assert.equal(bandwidth("unlimited"), null);
 * ```
 */
export const bandwidth: ArgParser<number | null> = parsed(parseBandwidth);

/**
 * A duration such as `5m` or `300ms` in milliseconds (`parseDuration`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(duration("5m"), 300_000);
 * ```
 */
export const duration: ArgParser<number> = parsed(parseDuration);

/**
 * Parses a measuring interval: `"1s"`, `"500ms"`, or `"2"` (seconds), in
 * milliseconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseInterval("500ms"), 500);
 * assert.equal(parseInterval("2"), 2000);
 * ```
 * @throws {RangeError} on anything else.
 */
export function parseInterval(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s)?$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) {
    throw new RangeError(
      `Cannot parse interval "${text}": expected a positive number followed by s or ms`,
    );
  }
  return m[2] === "ms" ? Number(m[1]) : Number(m[1]) * 1000;
}

/**
 * A measuring interval in milliseconds ({@link parseInterval}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(interval("1s"), 1000);
 * ```
 */
export const interval: ArgParser<number> = parsed(parseInterval);

/**
 * A TCP address `HOST:PORT` (`[::1]:7700` for IPv6), as `parseAddress`
 * reads it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(address("127.0.0.1:4444"), { hostname: "127.0.0.1", port: 4444 });
 * assert.throws(() => address("localhost"), /expected HOST:PORT/);
 * ```
 */
export const address: ArgParser<Address> = parsed((text) =>
  parseAddress(text, "address")
);

/** A socket to listen on or connect to: `unix:PATH` or `HOST:PORT`. */
export type Endpoint =
  | { readonly transport: "unix"; readonly path: string }
  | {
    readonly transport: "tcp";
    readonly hostname: string;
    readonly port: number;
  };

/**
 * A socket: `unix:PATH`, or `HOST:PORT` for TCP.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(endpoint("unix:/run/in.sock"), { transport: "unix", path: "/run/in.sock" });
 * assert.equal(endpoint("10.0.0.2:4444").transport, "tcp");
 * ```
 */
export const endpoint: ArgParser<Endpoint> = (text) => {
  if (text.startsWith("unix:")) {
    const path = text.slice("unix:".length);
    if (!path) {
      throw new InvalidArgumentError(
        `expected unix:PATH with a path, got "${text}"`,
      );
    }
    return { transport: "unix", path };
  }
  return { transport: "tcp", ...address(text) };
};

/** Options of {@link nameList}. */
export interface NameListOptions {
  /** The names allowed; absent: any non-empty name. */
  readonly known?: readonly string[];
  /** What one name is, for the message (default `"name"`). */
  readonly what?: string;
}

/**
 * Names separated by commas (spaces around them are dropped); each must be
 * one of `known` when given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const rows = nameList({ known: ["idle", "memcached"], what: "row" });
 * assert.deepEqual(rows("idle, memcached"), ["idle", "memcached"]);
 * assert.throws(() => rows("nosuch"), /Unknown row "nosuch": expected one of idle, memcached/);
 * ```
 */
export function nameList(options: NameListOptions = {}): ArgParser<string[]> {
  const what = options.what ?? "name";
  return (text) => {
    const names = text.split(",").map((n) => n.trim());
    if (names.some((n) => n === "")) {
      throw new InvalidArgumentError(
        `expected ${what}s separated by commas, got "${text}"`,
      );
    }
    const unknown = options.known &&
      names.find((n) => !options.known!.includes(n));
    if (unknown !== undefined) {
      throw new InvalidArgumentError(
        `Unknown ${what} "${unknown}": expected one of ${
          options.known!.join(", ")
        }`,
      );
    }
    return names;
  };
}

/**
 * A codec chain: registered codec names separated by `separator` (default
 * `,`), e.g. `zero,lz4`; an unknown name fails here, before anything
 * connects.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(codecChain()("zero, lz4"), ["zero", "lz4"]);
 * assert.throws(() => codecChain()("zero,zsdt"), /Unknown codec "zsdt"/);
 * ```
 */
export function codecChain(separator: string = ","): ArgParser<string[]> {
  return (text) => {
    const names = text.split(separator).map((n) => n.trim());
    if (names.some((n) => n === "")) {
      throw new InvalidArgumentError(
        `expected codec names separated by "${separator}", e.g. ${
          ["zero", "lz4"].join(separator)
        }, got "${text}"`,
      );
    }
    for (const n of names) parsed(codecByName)(n);
    return names;
  };
}

/**
 * Several codec chains: chains separated by `between`, each a
 * {@link codecChain} with `within` between its codecs, e.g.
 * `zero,lz4;zero,zstd` (the benches' `--chains`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(codecChains(";", ",")("zero,lz4;raw"), [["zero", "lz4"], ["raw"]]);
 * assert.deepEqual(codecChains(",", "+")("lz4,zero+zstd"), [["lz4"], ["zero", "zstd"]]);
 * ```
 */
export function codecChains(
  between: string,
  within: string,
): ArgParser<string[][]> {
  const chain = codecChain(within);
  return (text) => {
    const chains = text.split(between).filter((c) => c.trim() !== "");
    if (chains.length === 0) {
      throw new InvalidArgumentError(
        `expected codec chains separated by "${between}", got "${text}"`,
      );
    }
    return chains.map(chain);
  };
}
