/**
 * Test fixtures: credentials generated once per test file into a temporary
 * directory, and a loopback receiver over them.
 *
 * @module
 */

import { concatBytes } from "../../bytes.ts";
import { generateCredentials } from "./generate.ts";

/** Generates a fresh credentials directory; remove it with `Deno.remove(dir, { recursive: true })`. */
export async function credentialsDir(
  sourceIdentity = "src-a",
  receiverNames: string[] = ["localhost", "127.0.0.1"],
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hakobu-tls-" });
  await generateCredentials(dir, { sourceIdentity, receiverNames });
  return dir;
}

/** Reads all of `readable` into one array. */
export async function readAll(
  readable: ReadableStream<Uint8Array>,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of readable) parts.push(p);
  return concatBytes(parts);
}
