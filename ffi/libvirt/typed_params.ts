/**
 * `virTypedParameter` arrays, both ways: {@link decodeTypedParams} reads the
 * arrays libvirt returns (job stats, domain stats) into
 * {@link TypedParam}s, and {@link encodeTypedParams} lays out the arrays
 * hakobu passes in (migration parameters) in memory JS owns.
 *
 * Layout ({@link VIR_TYPED_PARAMETER}, x86-64): `char field[80]`, `int type`
 * at 80, the value union at 88 (`int`, `unsigned int`, `long long`,
 * `unsigned long long`, `double`, `char` as a boolean, or `char *`); 96
 * bytes a parameter.
 *
 * @module
 */

import { TypedParamType, type TypedParamTypeName } from "./constants.ts";
import { VIR_TYPED_PARAMETER as TP } from "./libvirt.ts";

/** One typed parameter, 64-bit values as bigints so nothing is rounded. */
export type TypedParam =
  | {
    readonly field: string;
    readonly type: "int" | "uint" | "double";
    readonly value: number;
  }
  | {
    readonly field: string;
    readonly type: "llong" | "ullong";
    readonly value: bigint;
  }
  | {
    readonly field: string;
    readonly type: "boolean";
    readonly value: boolean;
  }
  | { readonly field: string; readonly type: "string"; readonly value: string };

/** A parameter to encode: as {@link TypedParam}, 64-bit values may also be numbers. */
export type TypedParamInput =
  | TypedParam
  | {
    readonly field: string;
    readonly type: "llong" | "ullong";
    readonly value: number;
  };

/** A typed parameter's value in a plain record: 64-bit integers as numbers. */
export type TypedValue = number | string | boolean;

const TYPE_NAMES = Object.fromEntries(
  Object.entries(TypedParamType).map(([k, v]) => [v, k]),
) as Record<number, TypedParamTypeName>;

/**
 * Reads `n` parameters from the `virTypedParameter` array at `p`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeTypedParams, encodeTypedParams } from "./typed_params.ts";
 *
 * const enc = encodeTypedParams([{ field: "bandwidth", type: "ullong", value: 100n }]);
 * const p = Deno.UnsafePointer.of(enc.bytes);
 * assert.deepEqual(decodeTypedParams(p, enc.count), [
 *   { field: "bandwidth", type: "ullong", value: 100n },
 * ]);
 * ```
 * @throws {RangeError} on a type this binding does not know.
 */
export function decodeTypedParams(
  p: Deno.PointerValue,
  n: number,
): TypedParam[] {
  const out: TypedParam[] = [];
  if (p === null || n <= 0) return out;
  const v = new Deno.UnsafePointerView(p);
  for (let i = 0; i < n; i++) {
    const at = i * TP.size;
    const field = v.getCString(at + TP.field);
    const type = v.getInt32(at + TP.type);
    const val = at + TP.value;
    switch (type) {
      case TypedParamType.int:
        out.push({ field, type: "int", value: v.getInt32(val) });
        break;
      case TypedParamType.uint:
        out.push({ field, type: "uint", value: v.getUint32(val) });
        break;
      case TypedParamType.llong:
        out.push({ field, type: "llong", value: v.getBigInt64(val) });
        break;
      case TypedParamType.ullong:
        out.push({ field, type: "ullong", value: v.getBigUint64(val) });
        break;
      case TypedParamType.double:
        out.push({ field, type: "double", value: v.getFloat64(val) });
        break;
      case TypedParamType.boolean:
        out.push({ field, type: "boolean", value: v.getInt8(val) !== 0 });
        break;
      case TypedParamType.string: {
        const s = v.getPointer(val);
        out.push({
          field,
          type: "string",
          value: s === null ? "" : Deno.UnsafePointerView.getCString(s),
        });
        break;
      }
      default:
        throw new RangeError(
          `Unknown typed parameter type ${type} for field "${field}": expected 1..7 (virTypedParameterType)`,
        );
    }
  }
  return out;
}

/**
 * The parameters as a plain record, field → value, 64-bit integers as
 * numbers (exact up to 2^53: 8 PiB, or 104 days in nanoseconds). A field
 * given more than once keeps its last value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { typedParamsRecord } from "./typed_params.ts";
 *
 * assert.deepEqual(
 *   typedParamsRecord([
 *     { field: "state.state", type: "int", value: 1 },
 *     { field: "balloon.current", type: "ullong", value: 524288n },
 *   ]),
 *   { "state.state": 1, "balloon.current": 524288 },
 * );
 * ```
 */
export function typedParamsRecord(
  params: readonly TypedParam[],
): Record<string, TypedValue> {
  const out: Record<string, TypedValue> = {};
  for (const p of params) {
    out[p.field] = typeof p.value === "bigint" ? Number(p.value) : p.value;
  }
  return out;
}

/** An encoded `virTypedParameter` array; keep it (and so its strings) alive while C reads it. */
export interface EncodedTypedParams {
  /** The array, `count * 96` bytes (empty when `count` is 0). */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** How many parameters. */
  readonly count: number;
  /** The NUL-terminated strings the array points into. */
  readonly strings: readonly Uint8Array[];
}

/**
 * Lays out `params` as a `virTypedParameter` array in JS memory (string
 * values point into {@link EncodedTypedParams.strings}, so the result must
 * stay referenced until the C call returns).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeTypedParams } from "./typed_params.ts";
 *
 * const enc = encodeTypedParams([
 *   { field: "migrate_uri", type: "string", value: "tcp://10.0.0.2:49152" },
 *   { field: "parallel.connections", type: "int", value: 4 },
 * ]);
 * assert.equal(enc.count, 2);
 * assert.equal(enc.bytes.length, 2 * 96);
 * ```
 * @throws {RangeError} for a field name of 80 bytes or more, a value out of
 *   its C type's range, or an unknown type.
 */
export function encodeTypedParams(
  params: readonly TypedParamInput[],
): EncodedTypedParams {
  const bytes = new Uint8Array(params.length * TP.size);
  const v = new DataView(bytes.buffer);
  const strings: Uint8Array[] = [];
  const enc = new TextEncoder();
  params.forEach((p, i) => {
    const at = i * TP.size;
    const name = enc.encode(p.field);
    if (name.length >= TP.fieldLength) {
      throw new RangeError(
        `Typed parameter name "${p.field}" is ${name.length} bytes: libvirt allows at most ${
          TP.fieldLength - 1
        }`,
      );
    }
    bytes.set(name, at + TP.field);
    const type = TypedParamType[p.type];
    if (type === undefined) {
      throw new RangeError(
        `Unknown typed parameter type "${p.type}" for field "${p.field}": expected one of ${
          Object.keys(TypedParamType).join(", ")
        }`,
      );
    }
    v.setInt32(at + TP.type, type, true);
    const val = at + TP.value;
    const range = (ok: boolean) => {
      if (!ok) {
        throw new RangeError(
          `Typed parameter "${p.field}" = ${
            String(p.value)
          } does not fit a C ${p.type}`,
        );
      }
    };
    switch (p.type) {
      case "int":
        range(
          Number.isInteger(p.value) && p.value >= -(2 ** 31) &&
            p.value < 2 ** 31,
        );
        v.setInt32(val, p.value, true);
        break;
      case "uint":
        range(Number.isInteger(p.value) && p.value >= 0 && p.value < 2 ** 32);
        v.setUint32(val, p.value, true);
        break;
      case "llong":
      case "ullong": {
        if (typeof p.value === "number") range(Number.isInteger(p.value));
        const b = BigInt(p.value);
        if (p.type === "llong") {
          range(b >= -(2n ** 63n) && b < 2n ** 63n);
          v.setBigInt64(val, b, true);
        } else {
          range(b >= 0n && b < 2n ** 64n);
          v.setBigUint64(val, b, true);
        }
        break;
      }
      case "double":
        v.setFloat64(val, p.value, true);
        break;
      case "boolean":
        v.setInt8(val, p.value ? 1 : 0);
        break;
      case "string": {
        const s = enc.encode(p.value + "\0");
        strings.push(s);
        v.setBigUint64(
          val,
          BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(s))),
          true,
        );
        break;
      }
    }
  });
  return { bytes, count: params.length, strings };
}

/**
 * The name of a `virTypedParameterType` value, e.g. `"ullong"` for 4.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { typedParamTypeName } from "./typed_params.ts";
 *
 * assert.equal(typedParamTypeName(7), "string");
 * assert.equal(typedParamTypeName(0), undefined);
 * ```
 */
export function typedParamTypeName(
  type: number,
): TypedParamTypeName | undefined {
  return TYPE_NAMES[type];
}
