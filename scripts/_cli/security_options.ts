/**
 * The command-line options that choose a connection's security, shared by
 * `hakobu receive`, `hakobu migrate` and the tunnels: `--tls-dir` for TLS,
 * or `--insecure-plain` said out loud; never plain TCP by default.
 *
 * @module
 */

import { Option } from "@commander-js/extra-typings";
import {
  type ConnectSecurity,
  connectSecurityFromDir,
  INSECURE_PLAIN,
  type ListenSecurity,
  listenSecurityFromDir,
  PLAIN_WARNING,
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

function choose(
  tlsDir: string | undefined,
  plain: boolean | undefined,
): "tls" | "plain" {
  if (tlsDir !== undefined && plain) {
    throw new Error(
      "--tls-dir and --insecure-plain exclude each other: choose one",
    );
  }
  if (tlsDir === undefined && !plain) throw new Error(NO_CHOICE);
  if (plain) console.error(PLAIN_WARNING);
  return plain ? "plain" : "tls";
}

/**
 * A receiver's security from its options.
 *
 * @throws {Error} when neither or both of `--tls-dir` and `--insecure-plain`
 * are given, or a credentials file is missing or malformed (named).
 */
export async function listenSecurityFrom(o: {
  tlsDir?: string;
  insecurePlain?: boolean;
  tlsAuthz?: string;
}): Promise<ListenSecurity> {
  if (choose(o.tlsDir, o.insecurePlain) === "plain") {
    if (o.tlsAuthz !== undefined) {
      throw new Error(
        "--tls-authz needs --tls-dir: over plain TCP no source is authenticated",
      );
    }
    return INSECURE_PLAIN;
  }
  const authz = o.tlsAuthz?.split(",").map((s) => s.trim()).filter((s) =>
    s !== ""
  );
  return await listenSecurityFromDir(o.tlsDir!, authz);
}

/**
 * A source's security from its options.
 *
 * @throws {Error} as {@link listenSecurityFrom}.
 */
export async function connectSecurityFrom(o: {
  tlsDir?: string;
  insecurePlain?: boolean;
  tlsName?: string;
  tlsIdentity?: string;
}): Promise<ConnectSecurity> {
  if (choose(o.tlsDir, o.insecurePlain) === "plain") {
    if (o.tlsName !== undefined || o.tlsIdentity !== undefined) {
      throw new Error("--tls-name and --tls-identity need --tls-dir");
    }
    return INSECURE_PLAIN;
  }
  return await connectSecurityFromDir(o.tlsDir!, {
    serverName: o.tlsName,
    identity: o.tlsIdentity,
  });
}
