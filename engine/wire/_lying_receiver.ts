/**
 * A receiver that lies, for tests of the senders' own checks: it answers
 * HELLO with WELCOME, reads every frame up to the stream's end frame, and
 * then claims RESULT `{verified: true}` with a digest of its choosing,
 * whatever it received.
 *
 * @module
 */

import type { WireConn } from "./duplex.ts";
import { FrameType } from "./frame.ts";
import { FrameReader } from "./frame_reader.ts";
import { FrameWriter } from "./frame_writer.ts";
import { encodeResult, encodeWelcome, PROTOCOL_VERSION } from "./messages.ts";

/** Options of {@link lyingReceiver}. */
export interface LyingReceiverOptions {
  /** The frame type that ends the stream (STREAM_END for a tunnel, END for a migration into memory). */
  readonly endType: FrameType;
  /** The digest (hex) it claims. */
  readonly digest: string;
  /**
   * The verification scheme its WELCOME names (`"xxh3-128"` for a stream
   * tunnel's digest); absent: none, as an older receiver answers.
   */
  readonly verify?: string;
  /** Frames to send after the end frame and before RESULT (e.g. BACK_END). */
  readonly beforeResult?: readonly FrameType[];
}

/** Serves one session on `conn` as described in the module doc; resolves when it has lied. */
export async function lyingReceiver(
  conn: WireConn,
  options: LyingReceiverOptions,
): Promise<void> {
  const reader = new FrameReader(conn.readable);
  const writer = new FrameWriter(conn.writable);
  for (;;) {
    const frame = await reader.next();
    if (frame === null) throw new Error("Sender closed before its end frame");
    if (frame.type === FrameType.HELLO) {
      await writer.write(
        FrameType.WELCOME,
        0,
        encodeWelcome({
          protocol: PROTOCOL_VERSION,
          accepted: true,
          verify: options.verify,
        }),
      );
    } else if (frame.type === options.endType) break;
  }
  for (const type of options.beforeResult ?? []) {
    await writer.write(type, 0, new Uint8Array(0));
  }
  await writer.write(
    FrameType.RESULT,
    0,
    encodeResult({ verified: true, digest: options.digest, pagesApplied: 0 }),
  );
  await writer.close().catch(() => {});
  await reader.cancel().catch(() => {});
}
