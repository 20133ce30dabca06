/**
 * The golden frames and payloads of protocol 2, written by hand from the
 * specification (`docs/wire-format.md`, the module docs of `frame.ts` and
 * `batch.ts`), byte by byte, as hex with a comment per line. The wire tests
 * check the encoders and parsers against them, and
 * `wire_format_test.ts` checks that the specification shows these bytes.
 *
 * @module
 */

/**
 * A BATCH frame: round 2, channel 1, pfns 5, 6, 9 and 10; pages 5, 6 and
 * 10 zero (codec `zero`, id 1), page 9 filled with the word 11 22 33 44
 * (codec `rle`, id 2). The CRC is Python's
 * `zlib.crc32(frame[0:12] + frame[16:])`.
 */
export const GOLDEN_BATCH_FRAME: string = [
  "484b0c01 02000000 4a000000 7aa1801c", // "HK", type 12, channel 1, round 2, length 74, crc32 0x1c80a17a
  "04000000 0200 0000 02000000 06000000", // count 4, sectionCount 2, reserved, runCount 2, claimBytes 6
  "01 00 0000 00000000", // section 0: codec 1 (zero), reserved, 0 bytes
  "02 00 0000 0c000000", // section 1: codec 2 (rle), reserved, 12 bytes:
  "08000000 00040000 11223344", //   page length 8; a run of 1024 words 11 22 33 44
  "05000000 00000000 02000000", // run: pfns 5, 6
  "09000000 00000000 02000000", // run: pfns 9, 10
  "00 02 01 01 00 01", // claims: 2 pages of section 0, 1 of section 1, 1 of section 0
].join(" ");

/**
 * The payload of {@link GOLDEN_BATCH_FRAME}: pfns 5, 6, 9, 10; pages 5, 6,
 * 10 in section 0 (codec 1, no bytes), page 9 in section 1 (codec 2, 12
 * bytes).
 */
export const GOLDEN_BATCH_PAYLOAD: string = [
  "04000000 0200 0000 02000000 06000000", //  0: count 4, 2 sections, reserved, 2 runs, claimBytes 6
  "01 00 0000 00000000", // 16: section 0: codec 1, 0 bytes
  "02 00 0000 0c000000", // 24: section 1: codec 2, 12 bytes
  "08000000 00040000 11223344", // 32: its bytes
  "05000000 00000000 02000000", // 44: run 0: pfns 5, 6
  "09000000 00000000 02000000", // 56: run 1: pfns 9, 10
  "00 02 01 01 00 01", // 68: claims
].join(" ");

/**
 * A second BATCH payload: 200 zero pages from pfn 2^32 + 3 (a run whose
 * start needs its high word) in one section, whose one claim run of 200
 * takes two ULEB128 bytes (c8 01).
 */
export const GOLDEN_BATCH_HIGH_PAYLOAD: string = [
  "c8000000 0100 0000 01000000 03000000", // count 200, 1 section, 1 run, claimBytes 3
  "01 00 0000 00000000", // section 0: codec 1, 0 bytes
  "03000000 01000000 c8000000", // run: start 2^32 + 3, 200 pfns
  "00 c8 01", // claims: 200 pages of section 0
].join(" ");

/** A WELCOME frame: `{"protocol":2,"accepted":true}`, 30 bytes. */
export const GOLDEN_WELCOME_FRAME: string =
  "484b0200 00000000 1e000000 53e73e57" +
  "7b2270726f746f636f6c223a322c226163636570746564223a747275657d";
