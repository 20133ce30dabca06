/**
 * Transport helpers: link pacing. (The byte streams themselves are plain
 * `Deno.Conn`s.)
 *
 * @module
 */

export * from "./address.ts";
export * from "./pacer.ts";
export * from "./write_all.ts";
