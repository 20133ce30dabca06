import {
  connectSecurityFromDir,
  listenSecurityFromDir,
} from "./credentials.ts";
import {
  type ConnectSecurity,
  INSECURE_PLAIN,
  type ListenSecurity,
  PLAIN_WARNING,
  type SecurityFlags,
} from "./security.ts";

/**
 * A source's security from its flags; plain TCP prints {@link PLAIN_WARNING}
 * on stderr.
 *
 * @throws {Error} naming a missing or malformed credentials file.
 */
export async function connectSecurityFromFlags(
  flags: SecurityFlags,
): Promise<ConnectSecurity> {
  if ("insecurePlain" in flags) {
    console.error(PLAIN_WARNING);
    return INSECURE_PLAIN;
  }
  return await connectSecurityFromDir(flags.tlsDir, {
    serverName: flags.tlsName,
    identity: flags.tlsIdentity,
  });
}

/**
 * A receiver's security from its flags; plain TCP prints {@link PLAIN_WARNING}
 * on stderr.
 *
 * @throws {Error} naming a missing or malformed credentials file.
 */
export async function listenSecurityFromFlags(
  flags: SecurityFlags,
): Promise<ListenSecurity> {
  if ("insecurePlain" in flags) {
    console.error(PLAIN_WARNING);
    return INSECURE_PLAIN;
  }
  return await listenSecurityFromDir(flags.tlsDir, flags.tlsAuthz);
}
