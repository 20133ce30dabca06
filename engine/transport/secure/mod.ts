/**
 * Authenticated, encrypted hakobu connections: TLS 1.3 with the receiver's
 * x509 certificate, the source proven by a client certificate or a
 * pre-shared key bound to the TLS session, and an allow-list of source
 * identities; or plain TCP when asked for by name. `docs/trust.md` has the
 * threat model.
 *
 * @module
 */

export * from "./auth_error.ts";
export * from "./channel_conn.ts";
export * from "./connect.ts";
export * from "./credentials.ts";
export * from "./from_flags.ts";
export * from "./listen.ts";
export * from "./security.ts";
