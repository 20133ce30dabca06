/**
 * Codecs: one object per codec behind the {@link Codec} interface, a
 * registry by name and wire id, and the sender's chain (first claimant wins).
 *
 * @module
 */

export * from "./codec.ts";
export * from "./dedup.ts";
export * from "./delta.ts";
export * from "./chain.ts";
export * from "./lz4.ts";
export * from "./raw.ts";
export * from "./registry.ts";
export * from "./rle.ts";
export * from "./zero.ts";
export * from "./zstd.ts";
export type { FingerprintFn } from "./_fingerprint.ts";
export type {
  BatchDecoder,
  BatchEncoder,
  DecodedPages,
  PageBatch,
} from "./batch.ts";
