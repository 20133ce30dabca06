/**
 * Codecs: one object per codec behind the {@link Codec} interface, a
 * registry by name and wire id, and the sender's chain (first claimant wins).
 *
 * @module
 */

export * from "./codec.ts";
export * from "./chain.ts";
export * from "./raw.ts";
export * from "./registry.ts";
export * from "./zero.ts";
