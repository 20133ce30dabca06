/**
 * What `xl migrate` says to `xl migrate-receive` around the libxc image, so
 * that hakobu can take the sender's place (`migrate_domain.ts`) and a stock
 * `xl migrate-receive` rebuilds the domain. Read from Xen 4.17's
 * tools/xl/xl.h, xl_migrate.c, xl_saverestore.c and
 * docs/specs/libxl-migration-stream.pandoc:
 *
 * ```text
 * receiver → sender  banner "xl migration receiver ready, send binary domain data.\n"
 * sender → receiver  xl save header: magic[32], byteorder, mandatory_flags,
 *                    optional_flags, optional_data_len (u32, host order),
 *                    then u32 config length + the domain config as JSON + NUL
 *                    libxl stream: "LibxlFmt", version 2, options 0 (big-endian),
 *                    LIBXC_CONTEXT record, the libxc image, END record
 * receiver → sender  "domain received, ready to unpause\0"
 * sender → receiver  "domain is yours, you are cleared to unpause\0"
 * receiver → sender  "my copy unpause results are as follows\0" + 1 status byte (0 = running)
 * ```
 *
 * The libxl records written for a PV or PVH guest are exactly LIBXC_CONTEXT
 * and END; an HVM guest adds its device model's records, which hakobu does
 * not produce.
 *
 * @module
 */

import { XenStreamError } from "./stream/errors.ts";
import { concatBytes } from "../bytes.ts";

const enc = new TextEncoder();

/** `savefileheader_magic`: 32 bytes, NULs included. */
export const XL_SAVEFILE_MAGIC: Uint8Array = enc.encode(
  "Xen saved domain, xl format\n \0 \r",
);

/** `SAVEFILE_BYTEORDER_VALUE`, written in host order (little-endian here). */
export const XL_BYTEORDER = 0x01020304;

/** `XL_MANDATORY_FLAG_*`. */
export const XlMandatoryFlag = {
  /** The config data is JSON. */
  JSON: 1 << 0,
  /** The stream is libxl migration v2. */
  STREAM_V2: 1 << 1,
} as const;

/** Bytes of `struct save_file_header`. */
export const XL_SAVE_HEADER_BYTES: number = 32 + 4 * 4;

/** The fixed messages of xl's migration handshake, as bytes on the wire. */
export const XlMessage = {
  /** Receiver's first words (sent without a NUL). */
  banner: enc.encode("xl migration receiver ready, send binary domain data.\n"),
  /** Receiver: the stream was read and the domain built, paused (NUL included). */
  ready: enc.encode("domain received, ready to unpause\0"),
  /** Sender: go ahead and unpause (NUL included). */
  go: enc.encode("domain is yours, you are cleared to unpause\0"),
  /** Receiver: the next byte says how the unpause went (NUL included). */
  report: enc.encode("my copy unpause results are as follows\0"),
} as const;

/** libxl stream record types (libxl-migration-stream.pandoc). */
export const LibxlRecType = {
  END: 0,
  LIBXC_CONTEXT: 1,
  EMULATOR_XENSTORE_DATA: 2,
  EMULATOR_CONTEXT: 3,
  CHECKPOINT_END: 4,
  CHECKPOINT_STATE: 5,
} as const;

/** `RESTORE_STREAM_IDENT`: "LibxlFmt". */
export const LIBXL_STREAM_IDENT: Uint8Array = enc.encode("LibxlFmt");

/** `RESTORE_STREAM_VERSION`. */
export const LIBXL_STREAM_VERSION = 2;

/**
 * xl's save header followed by its optional data (the config as JSON), as
 * `save_domain_core_writeconfig` writes it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeXlSaveHeader } from "@hakobu/hakobu";
 *
 * const config = '{"c_info":{"name":"vm"}}';
 * const head = encodeXlSaveHeader(config);
 * // xl's 32-byte magic, byte order and flags, then the config's length and
 * // the config, NUL-terminated:
 * assert.equal(head.length, 48 + 4 + config.length + 1);
 * ```
 */
export function encodeXlSaveHeader(configJson: string): Uint8Array {
  const config = enc.encode(configJson + "\0");
  const out = new Uint8Array(XL_SAVE_HEADER_BYTES + 4 + config.length);
  const v = new DataView(out.buffer);
  out.set(XL_SAVEFILE_MAGIC, 0);
  v.setUint32(32, XL_BYTEORDER, true);
  v.setUint32(36, XlMandatoryFlag.JSON | XlMandatoryFlag.STREAM_V2, true);
  v.setUint32(40, 0, true);
  v.setUint32(44, 4 + config.length, true);
  v.setUint32(48, config.length, true);
  out.set(config, 52);
  return out;
}

/** A decoded xl save header. */
export interface XlSaveHeader {
  /** `XL_MANDATORY_FLAG_*` bits. */
  readonly mandatoryFlags: number;
  /** Optional flags (none defined). */
  readonly optionalFlags: number;
  /** The config text (JSON when the JSON flag is set), without its NUL. */
  readonly config: string;
  /** Bytes the header and its optional data took. */
  readonly length: number;
}

/**
 * Decodes xl's save header from the start of `bytes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   decodeXlSaveHeader,
 *   encodeXlSaveHeader,
 *   XenStreamError,
 * } from "@hakobu/hakobu";
 *
 * assert.equal(decodeXlSaveHeader(encodeXlSaveHeader("{}")).config, "{}");
 * assert.throws(() => decodeXlSaveHeader(new Uint8Array(48)), XenStreamError);
 * ```
 * @throws {XenStreamError} on a wrong magic, byte order, unknown mandatory
 *   flag or a truncated header.
 */
export function decodeXlSaveHeader(bytes: Uint8Array): XlSaveHeader {
  if (bytes.length < XL_SAVE_HEADER_BYTES) {
    throw new XenStreamError(
      `Truncated xl save header: ${bytes.length} of ${XL_SAVE_HEADER_BYTES} bytes`,
      0,
    );
  }
  for (let i = 0; i < XL_SAVEFILE_MAGIC.length; i++) {
    if (bytes[i] !== XL_SAVEFILE_MAGIC[i]) {
      throw new XenStreamError(
        'Not an xl save header: the magic differs from "Xen saved domain, xl format"',
        i,
      );
    }
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (v.getUint32(32, true) !== XL_BYTEORDER) {
    throw new XenStreamError(
      `xl save header has byte order 0x${
        v.getUint32(32, true).toString(16)
      }, expected 0x01020304 (a little-endian sender)`,
      32,
    );
  }
  const mandatoryFlags = v.getUint32(36, true);
  const known = XlMandatoryFlag.JSON | XlMandatoryFlag.STREAM_V2;
  if ((mandatoryFlags & ~known) !== 0) {
    throw new XenStreamError(
      `xl save header has unknown mandatory flags 0x${
        (mandatoryFlags & ~known).toString(16)
      }`,
      36,
    );
  }
  const optionalLen = v.getUint32(44, true);
  const end = XL_SAVE_HEADER_BYTES + optionalLen;
  if (bytes.length < end) {
    throw new XenStreamError(
      `Truncated xl save header: its optional data needs ${optionalLen} bytes, ${
        bytes.length - XL_SAVE_HEADER_BYTES
      } present`,
      XL_SAVE_HEADER_BYTES,
    );
  }
  let config = "";
  if (optionalLen >= 4) {
    const n = v.getUint32(48, true);
    if (4 + n > optionalLen) {
      throw new XenStreamError(
        `xl save header's config length ${n} overruns its optional data (${optionalLen} bytes)`,
        48,
      );
    }
    const raw = bytes.subarray(52, 52 + n);
    const text = raw.at(-1) === 0 ? raw.subarray(0, -1) : raw;
    config = new TextDecoder().decode(text);
  }
  return {
    mandatoryFlags,
    optionalFlags: v.getUint32(40, true),
    config,
    length: end,
  };
}

/**
 * libxl's stream header: ident, version 2, options 0, all big-endian.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeLibxlStreamHeader } from "@hakobu/hakobu";
 *
 * assert.equal(encodeLibxlStreamHeader().length, 16);
 * ```
 */
export function encodeLibxlStreamHeader(): Uint8Array {
  const out = new Uint8Array(16);
  out.set(LIBXL_STREAM_IDENT, 0);
  new DataView(out.buffer).setUint32(8, LIBXL_STREAM_VERSION, false);
  return out;
}

/**
 * One libxl record: type and length (u32, host order), the body, zero
 * padding to 8 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeLibxlRecord, LibxlRecType } from "@hakobu/hakobu";
 *
 * // A record header (type, length), and no body:
 * assert.equal(encodeLibxlRecord(LibxlRecType.END).length, 8);
 * ```
 */
export function encodeLibxlRecord(
  type: number,
  body: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const padded = Math.ceil(body.length / 8) * 8;
  const out = new Uint8Array(8 + padded);
  const v = new DataView(out.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, body.length, true);
  out.set(body, 8);
  return out;
}

/**
 * Everything the sender writes before the libxc image: xl's header with
 * the config, libxl's stream header and the LIBXC_CONTEXT record.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   encodeLibxlRecord,
 *   encodeLibxlStreamHeader,
 *   encodeXlSaveHeader,
 *   LibxlRecType,
 *   xlStreamPrefix,
 * } from "@hakobu/hakobu";
 *
 * const config = JSON.stringify({ c_info: { name: "vm" } });
 * const before = xlStreamPrefix(config);
 * assert.deepEqual(
 *   before,
 *   new Uint8Array([
 *     ...encodeXlSaveHeader(config),
 *     ...encodeLibxlStreamHeader(),
 *     ...encodeLibxlRecord(LibxlRecType.LIBXC_CONTEXT),
 *   ]),
 * );
 * ```
 */
export function xlStreamPrefix(configJson: string): Uint8Array {
  return concatBytes([
    encodeXlSaveHeader(configJson),
    encodeLibxlStreamHeader(),
    encodeLibxlRecord(LibxlRecType.LIBXC_CONTEXT),
  ]);
}

/**
 * What the sender writes after the libxc image of a PV or PVH guest: the
 * libxl END record.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   encodeLibxlRecord,
 *   LibxlRecType,
 *   xlStreamSuffix,
 * } from "@hakobu/hakobu";
 *
 * assert.deepEqual(xlStreamSuffix(), encodeLibxlRecord(LibxlRecType.END));
 * ```
 */
export function xlStreamSuffix(): Uint8Array {
  return encodeLibxlRecord(LibxlRecType.END);
}
