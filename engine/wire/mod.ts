/**
 * The wire protocol between a migration source and a receiver
 * (specification: `docs/wire-format.md`).
 *
 * Read in this order:
 * - `frame.ts`: the 16-byte frame header (magic `"HK"`, type, flags, round,
 *   length, CRC-32), frame types and limits.
 * - `frame_reader.ts` / `frame_writer.ts`: frames from and to a byte stream
 *   (`Deno.Conn` or {@link memoryDuplex}).
 * - `messages.ts`: the typed JSON/binary payload of each frame type, one
 *   encoder and one decoder beside each other.
 * - `pages.ts`: the PAGES payload: a zero-copy builder for the sender and a
 *   validate-everything-first parser for the receiver.
 * - `decoder_table.ts`: the receiver's codec negotiation (HELLO's list, one
 *   decoder per CODEC frame, the decoder for each page entry).
 * - `duplex.ts`: an in-memory connection for tests and in-process runs.
 *
 * The session itself (HELLO → … → RESULT) lives in `engine/receiver.ts` on
 * the receiving side and `engine/precopy.ts` on the sending side.
 *
 * @example
 * ```ts
 * import { FrameReader, FrameType, FrameWriter, encodeHello } from "./engine/wire/mod.ts";
 * const writer = new FrameWriter(conn.writable);
 * await writer.write(FrameType.HELLO, 0, encodeHello(hello));
 * const welcome = await new FrameReader(conn.readable).next();
 * ```
 *
 * @module
 */

export * from "./frame.ts";
export * from "./frame_reader.ts";
export * from "./frame_writer.ts";
export * from "./messages.ts";
export * from "./pages.ts";
export * from "./decoder_table.ts";
export * from "./duplex.ts";
