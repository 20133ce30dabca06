/**
 * Transport: authenticated, encrypted connections (`secure/`: TLS 1.3 with
 * certificates or a session-bound pre-shared key, or plain TCP when asked),
 * accepting past connections that failed in the backlog, addresses and
 * retrying connects, link pacing and short writes. (The tunnels' command line
 * is `scripts/_cli/tunnel_cli.ts`.)
 *
 * @module
 */

export * from "./accept.ts";
export * from "./address.ts";
export * from "./pacer.ts";
export * from "./write_all.ts";
export * from "./secure/mod.ts";
