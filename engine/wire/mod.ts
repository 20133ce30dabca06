/**
 * The wire protocol between a migration source and a receiver, protocol 2
 * (specification: `docs/wire-format.md`).
 *
 * Read in this order:
 * - `frame.ts`: the 16-byte frame header (magic `"HK"`, type, channel,
 *   round, length, CRC-32), frame types and limits.
 * - `frame_reader.ts` / `frame_writer.ts`: frames from and to a byte stream
 *   (`Deno.Conn` or {@link memoryDuplex}).
 * - `messages.ts`: the typed JSON/binary payload of each session frame, one
 *   encoder and one decoder beside each other.
 * - `batch.ts`: the BATCH payload: a batch of pages, one section per codec,
 *   validated whole before anything is decoded.
 * - `negotiate.ts`: the receiver's check of HELLO's codec list.
 * - `duplex.ts`: an in-memory connection for tests and in-process runs.
 * - `peer_text.ts`: what a peer wrote, made safe to print.
 *
 * The sessions themselves live in `engine/session/` (the receive core and
 * the source link), `engine/precopy.ts` (native source) and
 * `engine/stream/` (hypervisor streams).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   decodeWelcome,
 *   encodeHello,
 *   encodeWelcome,
 *   FrameReader,
 *   FrameType,
 *   FrameWriter,
 *   memoryDuplex,
 *   PROTOCOL_VERSION,
 * } from "@hakobu/hakobu";
 *
 * const [conn, peer] = memoryDuplex();
 * // The receiver's side, in miniature: read HELLO, answer WELCOME.
 * const peerDone = (async () => {
 *   const hello = await new FrameReader(peer.readable).next();
 *   assert.equal(hello?.type, FrameType.HELLO);
 *   const welcome = encodeWelcome({
 *     protocol: PROTOCOL_VERSION,
 *     accepted: true,
 *   });
 *   await new FrameWriter(peer.writable).write(FrameType.WELCOME, 0, welcome);
 * })();
 * const writer = new FrameWriter(conn.writable);
 * await writer.write(
 *   FrameType.HELLO,
 *   0,
 *   encodeHello({
 *     protocol: PROTOCOL_VERSION,
 *     memoryBytes: 4096,
 *     pageSize: 4096,
 *     codecs: [{ id: 0, name: "raw" }],
 *     vm: "sim",
 *     policy: "plain",
 *     channels: 1,
 *   }),
 * );
 * const welcome = await new FrameReader(conn.readable).next();
 * assert.equal(decodeWelcome(welcome!.payload).accepted, true);
 * await peerDone;
 * ```
 *
 * @module
 */

export * from "./frame.ts";
export * from "./frame_reader.ts";
export * from "./frame_writer.ts";
export * from "./messages.ts";
export * from "./batch.ts";
export * from "./negotiate.ts";
export * from "./duplex.ts";
export * from "./peer_text.ts";
