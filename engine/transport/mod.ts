/**
 * Transport helpers: accepting past connections that failed in the
 * backlog, addresses and retrying connects, link pacing and short writes.
 * (The byte streams themselves are plain `Deno.Conn`s; the tunnels' command
 * line is `scripts/_cli/tunnel_cli.ts`.)
 *
 * @module
 */

export * from "./accept.ts";
export * from "./address.ts";
export * from "./pacer.ts";
export * from "./write_all.ts";
