/**
 * TLS credentials from a directory laid out as QEMU's and libvirt's
 * (`tls-creds-x509`, `/etc/pki/qemu`): `ca-cert.pem`, `server-cert.pem`,
 * `server-key.pem`, `client-cert.pem`, `client-key.pem`, and `keys.psk`
 * (`identity:hexkey` per line, QEMU's `tls-creds-psk` form).
 *
 * @module
 */

import { join } from "node:path";
import { checkIdentity } from "./auth_message.ts";
import type { ConnectSecurity, ListenSecurity, PskEntry } from "./security.ts";

/** The files a credentials directory may hold. */
export const TLS_FILES = {
  ca: "ca-cert.pem",
  serverCert: "server-cert.pem",
  serverKey: "server-key.pem",
  clientCert: "client-cert.pem",
  clientKey: "client-key.pem",
  psk: "keys.psk",
} as const;

/** Shortest pre-shared key accepted, in bytes (128 bits). */
export const MIN_PSK_BYTES = 16;

/**
 * Parses a keys file: one `identity:hexkey` per line; blank lines and lines
 * starting with `#` are skipped.
 *
 * @example
 * ```ts
 * import { parsePskFile } from "./credentials.ts";
 * import assert from "node:assert/strict";
 * const keys = parsePskFile("src-a:" + "ab".repeat(32) + "\n", "keys.psk");
 * assert.equal(keys.get("src-a")?.length, 32);
 * ```
 *
 * @throws {Error} naming the file, the line and what is wrong with it.
 */
export function parsePskFile(
  text: string,
  path: string,
): Map<string, Uint8Array> {
  const keys = new Map<string, Uint8Array>();
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const where = `${path} line ${i + 1}`;
    const colon = line.lastIndexOf(":");
    if (colon < 0) {
      throw new Error(`${where}: expected identity:hexkey`);
    }
    const identity = line.slice(0, colon);
    const hexKey = line.slice(colon + 1);
    try {
      checkIdentity(identity);
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
    if (!/^([0-9a-fA-F]{2})+$/.test(hexKey)) {
      throw new Error(`${where}: the key is not an even number of hex digits`);
    }
    if (hexKey.length / 2 < MIN_PSK_BYTES) {
      throw new Error(
        `${where}: the key for "${identity}" has ${
          hexKey.length / 2
        } bytes, fewer than ${MIN_PSK_BYTES} (make one with: head -c 32 /dev/urandom | xxd -p -c 64)`,
      );
    }
    if (keys.has(identity)) {
      throw new Error(`${where}: "${identity}" is listed twice`);
    }
    keys.set(
      identity,
      Uint8Array.from(hexKey.match(/../g)!, (h) => parseInt(h, 16)),
    );
  });
  if (keys.size === 0) throw new Error(`${path} holds no key`);
  return keys;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`Cannot read ${path}: ${(e as Error).message}`);
  }
}

function checkPem(
  text: string,
  path: string,
  kind: "certificate" | "key",
): string {
  const ok = kind === "certificate"
    ? /-----BEGIN CERTIFICATE-----/.test(text)
    : /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(text);
  if (!ok) {
    throw new Error(
      `${path} is not a PEM ${kind} (no "-----BEGIN ${
        kind === "certificate" ? "CERTIFICATE" : "PRIVATE KEY"
      }-----")`,
    );
  }
  return text;
}

async function readDir(
  dir: string,
): Promise<Record<keyof typeof TLS_FILES, string | undefined>> {
  try {
    if (!(await Deno.stat(dir)).isDirectory) throw new Error("not a directory");
  } catch (e) {
    throw new Error(
      `TLS credentials directory ${dir}: ${
        e instanceof Deno.errors.NotFound ? "not found" : (e as Error).message
      } (make one with: hakobu tls init ${dir})`,
    );
  }
  const entries = await Promise.all(
    Object.entries(TLS_FILES).map(async ([k, name]) =>
      [k, await readOptional(join(dir, name))] as const
    ),
  );
  return Object.fromEntries(entries) as Record<
    keyof typeof TLS_FILES,
    string | undefined
  >;
}

/**
 * A receiver's security from a credentials directory: `server-cert.pem` and
 * `server-key.pem` are required; sources may authenticate with a client
 * certificate signed by `ca-cert.pem` and/or a key from `keys.psk`.
 *
 * @param dir The credentials directory.
 * @param authz Identities allowed to migrate in (absent: every authenticated one).
 * @throws {Error} naming the missing or malformed file.
 */
export async function listenSecurityFromDir(
  dir: string,
  authz?: readonly string[],
): Promise<ListenSecurity> {
  const f = await readDir(dir);
  const need = (
    text: string | undefined,
    name: string,
    kind: "certificate" | "key",
  ) => {
    if (text === undefined) {
      throw new Error(
        `${
          join(dir, name)
        } is missing: a receiver needs its certificate and key`,
      );
    }
    return checkPem(text, join(dir, name), kind);
  };
  const cert = need(f.serverCert, TLS_FILES.serverCert, "certificate");
  const key = need(f.serverKey, TLS_FILES.serverKey, "key");
  const clientCa = f.ca === undefined
    ? undefined
    : checkPem(f.ca, join(dir, TLS_FILES.ca), "certificate");
  const psk = f.psk === undefined
    ? undefined
    : parsePskFile(f.psk, join(dir, TLS_FILES.psk));
  if (!clientCa && !psk) {
    throw new Error(
      `${dir} holds neither ${TLS_FILES.ca} (to verify sources' certificates) nor ${TLS_FILES.psk}: no source could authenticate`,
    );
  }
  for (const id of authz ?? []) checkIdentity(id);
  return { kind: "tls", cert, key, clientCa, psk, authz };
}

/**
 * A source's security from a credentials directory: `ca-cert.pem` (the CA
 * that signs the receiver's certificate) is required; the source proves
 * itself with `client-cert.pem` + `client-key.pem` when present, else with
 * its key in `keys.psk` (`identity` picks it; a file with one key needs none).
 *
 * @param dir The credentials directory.
 * @param options `serverName`: the name the receiver's certificate must
 * carry (default: the host connected to); `identity`: the PSK identity.
 * @throws {Error} naming the missing or malformed file.
 */
export async function connectSecurityFromDir(
  dir: string,
  options: { serverName?: string; identity?: string } = {},
): Promise<ConnectSecurity> {
  const f = await readDir(dir);
  if (f.ca === undefined) {
    throw new Error(
      `${
        join(dir, TLS_FILES.ca)
      } is missing: a source needs the CA that signs the receiver's certificate`,
    );
  }
  const ca = checkPem(f.ca, join(dir, TLS_FILES.ca), "certificate");
  if ((f.clientCert === undefined) !== (f.clientKey === undefined)) {
    throw new Error(
      `${dir} has one of ${TLS_FILES.clientCert} and ${TLS_FILES.clientKey} without the other`,
    );
  }
  const base = { kind: "tls" as const, ca, serverName: options.serverName };
  if (f.clientCert !== undefined && options.identity === undefined) {
    return {
      ...base,
      client: {
        cert: checkPem(
          f.clientCert,
          join(dir, TLS_FILES.clientCert),
          "certificate",
        ),
        key: checkPem(f.clientKey!, join(dir, TLS_FILES.clientKey), "key"),
      },
    };
  }
  if (f.psk === undefined) {
    throw new Error(
      `${dir} has neither ${TLS_FILES.clientCert} + ${TLS_FILES.clientKey} nor ${TLS_FILES.psk}: the source could not prove who it is`,
    );
  }
  const keys = parsePskFile(f.psk, join(dir, TLS_FILES.psk));
  let entry: PskEntry;
  if (options.identity !== undefined) {
    const key = keys.get(options.identity);
    if (!key) {
      throw new Error(
        `${
          join(dir, TLS_FILES.psk)
        } has no key for identity "${options.identity}"`,
      );
    }
    entry = { identity: options.identity, key };
  } else if (keys.size === 1) {
    const [[identity, key]] = keys;
    entry = { identity, key };
  } else {
    throw new Error(
      `${
        join(dir, TLS_FILES.psk)
      } holds ${keys.size} keys: say which identity is this source's (--tls-identity)`,
    );
  }
  return { ...base, psk: entry };
}
