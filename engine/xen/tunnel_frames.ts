/**
 * The frames the Xen tunnel adds to hakobu's wire protocol (types 48..52,
 * declared in the core `FrameType`; core types 1..11 and the QEMU tunnel's
 * 32..33 do not clash). Header: the core 16 bytes (magic "HK", type, flags 0, round,
 * length, CRC-32). Specification: `docs/xen.md`.
 *
 * @module
 */

import {
  encodeFrame,
  type Frame,
  FrameType,
  frameTypeName,
} from "../wire/frame.ts";
import { FrameReader } from "../wire/frame_reader.ts";

/**
 * The Xen tunnel's frame types.
 *
 * @example
 * ```ts
 * XenFrameType.XEN_OPAQUE; // 48
 * ```
 */
export const XenFrameType = {
  /** See {@link FrameType.XEN_OPAQUE}. */
  XEN_OPAQUE: FrameType.XEN_OPAQUE,
  /**
   * source → receiver: a PAGE_DATA record without its page data:
   * `u32 flags (bit 0: big-endian stream), u32 0`, then the record header,
   * count, reserved and pfn list. Its data pages are the entries of the
   * PAGES frame that follows (none when no entry carries data).
   */
  XEN_PAGE_DATA: FrameType.XEN_PAGE_DATA,
  /** See {@link FrameType.XEN_END}. */
  XEN_END: FrameType.XEN_END,
  /** See {@link FrameType.XEN_BACK}. */
  XEN_BACK: FrameType.XEN_BACK,
  /** See {@link FrameType.XEN_BACK_END}. */
  XEN_BACK_END: FrameType.XEN_BACK_END,
} as const;

/** Name of a core or Xen tunnel frame type. */
export function xenFrameTypeName(type: number): string {
  return frameTypeName(type);
}

/**
 * Encodes a whole frame of a core or Xen tunnel type: the wire layer's
 * {@link encodeFrame}, which knows the stream-mode types.
 *
 * @example
 * ```ts
 * encodeXenFrame(XenFrameType.XEN_OPAQUE, 0, new Uint8Array([1, 2]));
 * ```
 */
export function encodeXenFrame(
  type: number,
  round: number,
  payload: Uint8Array,
): Uint8Array {
  return encodeFrame(type as FrameType, round, payload);
}

/** A frame read by {@link XenFrameReader}. */
export type XenFrame = Frame;

/** Reads core and Xen tunnel frames: the wire layer's {@link FrameReader}. */
export class XenFrameReader extends FrameReader {}
