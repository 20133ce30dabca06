/**
 * The command-line options that choose a connection's security, shared by
 * `hakobu receive`, `hakobu migrate` and the tunnels: `--tls-dir` for TLS,
 * or `--insecure-plain` said out loud; never plain TCP by default.
 *
 * @module
 */

import { Option } from "@commander-js/extra-typings";
import {
  type ChannelAuthError,
  type ConnectSecurity,
  connectSecurityFromFlags,
  type ListenSecurity,
  listenSecurityFromFlags,
  type SecurityFlags,
} from "../../engine/transport/secure/mod.ts";

/** `--tls-dir DIR`: the credentials directory (QEMU's layout; `hakobu tls init DIR` makes one). */
export const tlsDirOption = (): Option<"--tls-dir <dir>"> =>
  new Option(
    "--tls-dir <dir>",
    "TLS credentials: ca-cert.pem, server-cert.pem/-key.pem (receiver), client-cert.pem/-key.pem or keys.psk (source); 'hakobu tls init DIR' makes them",
  );

/** `--insecure-plain`: plain TCP, asked for by name. */
export const insecurePlainOption = (): Option<"--insecure-plain"> =>
  new Option(
    "--insecure-plain",
    "plain TCP: no authentication, no encryption (trusted loopback or lab networks only)",
  );

/** `--tls-authz ID,ID`: the source identities a receiver admits. */
export const tlsAuthzOption = (): Option<"--tls-authz <identities>"> =>
  new Option(
    "--tls-authz <identities>",
    "comma-separated source identities allowed to migrate in (client certificate CN or PSK identity; default: every authenticated source)",
  );

/** `--tls-name NAME`: the name the receiver's certificate must carry. */
export const tlsNameOption = (): Option<"--tls-name <name>"> =>
  new Option(
    "--tls-name <name>",
    "the name the receiver's certificate must carry (default: the host of the address)",
  );

/** `--tls-identity ID`: which key of keys.psk is this source's. */
export const tlsIdentityOption = (): Option<"--tls-identity <id>"> =>
  new Option(
    "--tls-identity <id>",
    "authenticate with this identity's pre-shared key from keys.psk (instead of client-cert.pem)",
  );

const NO_CHOICE =
  "No connection security chosen: pass --tls-dir DIR (make one with 'hakobu tls init DIR') or, on a trusted network only, --insecure-plain";

/** The parsed security options of a command. */
export interface SecurityOptionValues {
  tlsDir?: string;
  insecurePlain?: boolean;
  tlsAuthz?: string;
  tlsName?: string;
  tlsIdentity?: string;
}

/**
 * The flags a command's options chose, checked: exactly one of `--tls-dir`
 * and `--insecure-plain`, and the TLS-only options only with `--tls-dir`.
 *
 * @throws {Error} naming the flags in conflict, or the missing choice.
 */
export function securityFlagsFrom(o: SecurityOptionValues): SecurityFlags {
  if (o.tlsDir !== undefined && o.insecurePlain) {
    throw new Error(
      "--tls-dir and --insecure-plain exclude each other: choose one",
    );
  }
  if (o.insecurePlain) {
    const tlsOnly = [
      ["--tls-authz", o.tlsAuthz],
      ["--tls-name", o.tlsName],
      ["--tls-identity", o.tlsIdentity],
    ].filter(([, v]) => v !== undefined).map(([f]) => f);
    if (tlsOnly.length > 0) {
      throw new Error(
        `${
          tlsOnly.join(", ")
        } need --tls-dir: over plain TCP nobody is authenticated`,
      );
    }
    return { insecurePlain: true };
  }
  if (o.tlsDir === undefined) throw new Error(NO_CHOICE);
  return {
    tlsDir: o.tlsDir,
    tlsName: o.tlsName,
    tlsIdentity: o.tlsIdentity,
    tlsAuthz: o.tlsAuthz?.split(",").map((s) => s.trim()).filter((s) =>
      s !== ""
    ),
  };
}

/** A receiver's security from its options (see {@link securityFlagsFrom}). */
export async function listenSecurityFrom(
  o: SecurityOptionValues,
): Promise<ListenSecurity> {
  return await listenSecurityFromFlags(securityFlagsFrom(o));
}

/** A source's security from its options (see {@link securityFlagsFrom}). */
export async function connectSecurityFrom(
  o: SecurityOptionValues,
): Promise<ConnectSecurity> {
  return await connectSecurityFromFlags(securityFlagsFrom(o));
}

/**
 * Prints a refused connection on stderr, for a receiver that serves on:
 * `hakobu receive` and the receiving tunnels say it the same way.
 */
export function reportRefused(e: ChannelAuthError): void {
  console.error(
    `refused ${e.peer ?? "a connection"}, still listening: ${e.message}`,
  );
}
