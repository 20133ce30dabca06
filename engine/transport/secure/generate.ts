/**
 * Making a set of TLS credentials for a migration network: a CA, the
 * receiver's certificate for its names, a source's client certificate, and
 * a pre-shared key: what `hakobu tls init` writes.
 *
 * Kept out of the transport barrel: it loads an x509 library that only the
 * one-off set-up needs.
 *
 * @module
 */

import * as x509 from "@peculiar/x509";
import { isIP } from "node:net";
import { join } from "node:path";
import { checkIdentity } from "./auth_message.ts";
import { TLS_FILES } from "./credentials.ts";

x509.cryptoProvider.set(crypto);

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const DAY_MS = 86_400_000;

/** Options of {@link generateCredentials}. */
export interface GenerateCredentialsOptions {
  /** DNS names and IP addresses the receiver's certificate is valid for (default `localhost`, `127.0.0.1`, `::1`). */
  receiverNames?: readonly string[];
  /** The source's identity: its client certificate's CN and its PSK identity (default `hakobu-source`). */
  sourceIdentity?: string;
  /** Days the certificates stay valid (default 365). */
  days?: number;
}

/** The files written, by name in {@link TLS_FILES} plus `caKey`. */
export interface GeneratedCredentials {
  /** The directory written. */
  readonly dir: string;
  /** Every file written, absolute or as given. */
  readonly files: readonly string[];
}

function pem(label: string, der: ArrayBuffer): string {
  return x509.PemConverter.encode(der, label) + "\n";
}

async function keyPair(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey(ALGORITHM, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
}

function serial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] &= 0x7f; // positive
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Writes a CA, a receiver certificate and key, a source client certificate
 * and key, and a `keys.psk` with one fresh 32-byte key into `dir` (created
 * when missing; existing credential files are never overwritten). Private
 * keys are written mode 0600.
 *
 * The receiver needs `ca-cert.pem` (to verify client certificates),
 * `server-cert.pem`, `server-key.pem` and, for PSK sources, `keys.psk`; a
 * source needs `ca-cert.pem` and `client-cert.pem` + `client-key.pem` or
 * `keys.psk`. `ca-key.pem` signs more certificates: keep it off both.
 *
 * @example
 * ```ts
 * import { generateCredentials } from "./generate.ts";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * const made = await generateCredentials(dir, { sourceIdentity: "src-a" });
 * assert.equal(made.files.length, 7);
 * assert.match(await Deno.readTextFile(`${dir}/keys.psk`), /^src-a:[0-9a-f]{64}\n$/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @throws {Error} when a file already exists or a name is not usable.
 */
export async function generateCredentials(
  dir: string,
  options: GenerateCredentialsOptions = {},
): Promise<GeneratedCredentials> {
  const names = options.receiverNames ?? ["localhost", "127.0.0.1", "::1"];
  if (names.length === 0) {
    throw new Error("The receiver needs at least one name");
  }
  const identity = options.sourceIdentity ?? "hakobu-source";
  checkIdentity(identity);
  const days = options.days ?? 365;
  if (!Number.isInteger(days) || days < 1) {
    throw new RangeError(
      `Bad validity "${days}" days: expected a positive integer`,
    );
  }
  const paths = {
    ca: join(dir, TLS_FILES.ca),
    caKey: join(dir, "ca-key.pem"),
    serverCert: join(dir, TLS_FILES.serverCert),
    serverKey: join(dir, TLS_FILES.serverKey),
    clientCert: join(dir, TLS_FILES.clientCert),
    clientKey: join(dir, TLS_FILES.clientKey),
    psk: join(dir, TLS_FILES.psk),
  };
  await Deno.mkdir(dir, { recursive: true });
  for (const path of Object.values(paths)) {
    try {
      await Deno.lstat(path);
      throw new Error(`${path} already exists: not overwriting credentials`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + days * DAY_MS);
  const caKeys = await keyPair();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: "CN=hakobu migration CA",
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const leaf = async (
    subject: string,
    usage: string,
    extra: x509.Extension[],
  ): Promise<{ cert: x509.X509Certificate; keys: CryptoKeyPair }> => {
    const keys = await keyPair();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject,
      issuer: ca.subject,
      notBefore,
      notAfter,
      signingKey: caKeys.privateKey,
      publicKey: keys.publicKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([usage]),
        ...extra,
      ],
    });
    return { cert, keys };
  };
  const server = await leaf(
    `CN=${names[0]}`,
    x509.ExtendedKeyUsage.serverAuth,
    [
      new x509.SubjectAlternativeNameExtension(
        names.map((n): x509.JsonGeneralName =>
          isIP(n) ? { type: "ip", value: n } : { type: "dns", value: n }
        ),
      ),
    ],
  );
  const client = await leaf(
    `CN=${identity}`,
    x509.ExtendedKeyUsage.clientAuth,
    [],
  );
  const privatePem = async (k: CryptoKey) =>
    pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", k));
  const psk = Array.from(
    crypto.getRandomValues(new Uint8Array(32)),
    (x) => x.toString(16).padStart(2, "0"),
  ).join("");
  const writes: [string, string, number][] = [
    [paths.ca, ca.toString("pem") + "\n", 0o644],
    [paths.caKey, await privatePem(caKeys.privateKey), 0o600],
    [paths.serverCert, server.cert.toString("pem") + "\n", 0o644],
    [paths.serverKey, await privatePem(server.keys.privateKey), 0o600],
    [paths.clientCert, client.cert.toString("pem") + "\n", 0o644],
    [paths.clientKey, await privatePem(client.keys.privateKey), 0o600],
    [paths.psk, `${identity}:${psk}\n`, 0o600],
  ];
  for (const [path, text, mode] of writes) {
    await Deno.writeTextFile(path, text, { mode, createNew: true });
  }
  return { dir, files: writes.map(([p]) => p) };
}
