import { createHash } from "node:crypto";

/** Bytes hashed per update call; keeps each call short enough to stay responsive. */
const CHUNK = 16 << 20;

/**
 * SHA-256 of a whole memory image, the digest both sides of a migration
 * compare at the end. Anyone can check it against `sha256sum` of a dumped
 * image.
 *
 * Yields to the event loop between 16 MiB chunks so that a receiver's socket
 * keeps being served while a large image is hashed.
 *
 * @example
 * ```ts
 * const d = await memoryDigest(new Uint8Array(8192));
 * console.log(d.length); // 32
 * ```
 *
 * @param memory The memory image.
 * @returns The 32-byte SHA-256 digest.
 */
export async function memoryDigest(memory: Uint8Array): Promise<Uint8Array> {
  const hash = createHash("sha256");
  for (let off = 0; off < memory.length; off += CHUNK) {
    hash.update(memory.subarray(off, Math.min(off + CHUNK, memory.length)));
    if (off + CHUNK < memory.length) await new Promise((r) => setTimeout(r, 0));
  }
  return new Uint8Array(hash.digest());
}

/**
 * Lower-case hexadecimal form of a digest.
 *
 * @example
 * ```ts
 * hex(new Uint8Array([1, 255])); // "01ff"
 * ```
 *
 * @param bytes Bytes to format.
 * @returns Two hex digits per byte.
 */
export function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}
