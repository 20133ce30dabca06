/**
 * What protects a hakobu connection: the choice a receiver and a source
 * make before any migration byte moves.
 *
 * Two kinds only. `tls`: TLS 1.3 in which the receiver proves itself with an
 * x509 certificate and the source proves itself with a client certificate or
 * with a pre-shared key bound to that TLS session, then the receiver checks
 * that identity against its allow-list. `plain`: unauthenticated,
 * unencrypted TCP, which callers must ask for by name (the CLI's
 * `--insecure-plain`) and which prints a warning. `docs/trust.md` has the
 * threat model.
 *
 * @module
 */

/** A pre-shared key and the identity it belongs to (QEMU's `keys.psk` form: `identity:hexkey`). */
export interface PskEntry {
  /** Who holds the key: printable ASCII, 1–255 bytes. */
  readonly identity: string;
  /** The key: at least 16 bytes. */
  readonly key: Uint8Array;
}

/** How a receiver protects its listener. */
export type ListenSecurity =
  | {
    readonly kind: "tls";
    /** The receiver's certificate chain, PEM. */
    readonly cert: string;
    /** The receiver's private key, PEM. */
    readonly key: string;
    /**
     * CA certificates, PEM, that sign the sources' client certificates:
     * a source presenting a certificate they verify is authenticated as the
     * certificate's common name. Absent: certificates are not accepted.
     */
    readonly clientCa?: string;
    /** Pre-shared keys by identity: a source proving one is authenticated as that identity. */
    readonly psk?: ReadonlyMap<string, Uint8Array>;
    /**
     * Identities allowed to migrate into this receiver (QEMU's `tls-authz`).
     * Absent: every authenticated identity is.
     */
    readonly authz?: readonly string[];
  }
  | { readonly kind: "plain" };

/** How a source protects its connection to a receiver. */
export type ConnectSecurity =
  | {
    readonly kind: "tls";
    /** CA certificates, PEM, that sign the receiver's certificate: the only ones trusted. */
    readonly ca: string;
    /** The name the receiver's certificate must carry (default: the host connected to). */
    readonly serverName?: string;
    /** The source's client certificate and key, PEM. */
    readonly client?: { readonly cert: string; readonly key: string };
    /** The source's pre-shared key, used when no client certificate is given. */
    readonly psk?: PskEntry;
  }
  | { readonly kind: "plain" };

/** Plain TCP on either side: no authentication, no encryption. */
export const INSECURE_PLAIN: { readonly kind: "plain" } = Object.freeze({
  kind: "plain",
});

/** The warning printed whenever a connection runs over plain TCP. */
export const PLAIN_WARNING =
  "WARNING: plain TCP (--insecure-plain): the memory crosses the link unencrypted, and anyone who can reach the receiver can write a VM into it";

/**
 * A connection's security as command-line flags: what a parent process
 * passes on to a tunnel it starts (`--tls-dir …` or `--insecure-plain`).
 */
export type SecurityFlags =
  | {
    /** The credentials directory (`--tls-dir`). */
    readonly tlsDir: string;
    /** Source: the name the receiver's certificate must carry (`--tls-name`). */
    readonly tlsName?: string;
    /** Source: the PSK identity to authenticate with (`--tls-identity`). */
    readonly tlsIdentity?: string;
    /** Receiver: the identities admitted (`--tls-authz`). */
    readonly tlsAuthz?: readonly string[];
  }
  | { readonly insecurePlain: true };

/**
 * The flags that give a child process `flags` for `side`.
 *
 * @example
 * ```ts
 * import { securityArgs } from "./security.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(securityArgs({ tlsDir: "/pki", tlsAuthz: ["a", "b"] }, "receiver"), ["--tls-dir", "/pki", "--tls-authz", "a,b"]);
 * assert.deepEqual(securityArgs({ insecurePlain: true }, "source"), ["--insecure-plain"]);
 * ```
 */
export function securityArgs(
  flags: SecurityFlags,
  side: "source" | "receiver",
): string[] {
  if ("insecurePlain" in flags) return ["--insecure-plain"];
  const args = ["--tls-dir", flags.tlsDir];
  if (side === "source") {
    if (flags.tlsName !== undefined) args.push("--tls-name", flags.tlsName);
    if (flags.tlsIdentity !== undefined) {
      args.push("--tls-identity", flags.tlsIdentity);
    }
  } else if (flags.tlsAuthz !== undefined) {
    args.push("--tls-authz", flags.tlsAuthz.join(","));
  }
  return args;
}
