/**
 * Transport helpers: accepting past connections that failed in the
 * backlog, addresses and retrying connects, link pacing, short writes, and
 * the tunnels' shared command-line pieces. (The byte streams themselves
 * are plain `Deno.Conn`s.)
 *
 * @module
 */

export * from "./accept.ts";
export * from "./address.ts";
export * from "./pacer.ts";
export * from "./tunnel_cli.ts";
export * from "./write_all.ts";
