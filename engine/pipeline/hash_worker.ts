/**
 * A SHA-256 over a stream, on its own Worker (`stream_hasher.ts`): takes
 * chunks in order, answers the digest when asked.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { createHash } from "node:crypto";

let hash = createHash("sha256");

self.onmessage = (
  e: MessageEvent<
    { type: "update"; bytes: Uint8Array } | { type: "digest"; id: number }
  >,
) => {
  const m = e.data;
  if (m.type === "update") {
    hash.update(m.bytes);
    return;
  }
  const digest = new Uint8Array(hash.digest());
  hash = createHash("sha256");
  self.postMessage({ id: m.id, digest }, { transfer: [digest.buffer] });
};
