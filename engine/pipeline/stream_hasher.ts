/**
 * The SHA-256 of a stream, hashed on a Worker of its own: a tunnel's main
 * thread parses (sender) or rebuilds (receiver) the stream and would
 * otherwise spend a good part of its time hashing it. Bytes over a
 * SharedArrayBuffer (`largeReads`' slabs, the receiver's output pieces) are
 * shared with the Worker, not copied, and consecutive views of one buffer go
 * as one message; other bytes are copied (a memcpy costs a fraction of
 * hashing), so the caller keeps them.
 *
 * @module
 */

/** Shared bytes wait for what follows them up to this many bytes. */
const SHARED_COALESCE_BYTES = 1 << 20;

/**
 * A running SHA-256 of bytes given in order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hex } from "@hakobu/hakobu";
 * import { StreamHasher } from "./stream_hasher.ts";
 *
 * const h = new StreamHasher();
 * try {
 *   h.update(new TextEncoder().encode("ab"));
 *   h.update(new TextEncoder().encode("c"));
 *   assert.equal(
 *     hex(await h.digest()),
 *     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
 *   );
 * } finally {
 *   h.close();
 * }
 * ```
 */
export class StreamHasher {
  readonly #worker: Worker;
  #ids = 0;
  readonly #waiting = new Map<number, (d: Uint8Array) => void>();
  #error: Error | null = null;
  #fail: ((e: Error) => void)[] = [];
  /** Shared bytes not yet posted (consecutive views joined). */
  #shared: Uint8Array | null = null;

  constructor() {
    this.#worker = new Worker(new URL("./hash_worker.ts", import.meta.url), {
      type: "module",
    });
    this.#worker.onmessage = (
      e: MessageEvent<{ id: number; digest: Uint8Array }>,
    ) => {
      this.#waiting.get(e.data.id)?.(e.data.digest);
      this.#waiting.delete(e.data.id);
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#error = new Error(`The stream's hash Worker failed: ${e.message}`);
      for (const f of this.#fail) f(this.#error);
      this.#fail = [];
    };
  }

  /**
   * Adds `bytes`: copied, or, over a SharedArrayBuffer, shared (the caller
   * must then never write them again).
   */
  update(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (bytes.buffer instanceof SharedArrayBuffer) {
      const p = this.#shared;
      if (
        p && p.buffer === bytes.buffer &&
        p.byteOffset + p.length === bytes.byteOffset
      ) {
        this.#shared = new Uint8Array(
          p.buffer,
          p.byteOffset,
          p.length + bytes.length,
        );
      } else {
        this.#postShared();
        this.#shared = bytes;
      }
      if (this.#shared.length >= SHARED_COALESCE_BYTES) this.#postShared();
      return;
    }
    this.#postShared();
    const copy = bytes.slice();
    this.#worker.postMessage({ type: "update", bytes: copy }, {
      transfer: [copy.buffer],
    });
  }

  /** The SHA-256 of everything given so far (the hash then starts over). */
  digest(): Promise<Uint8Array> {
    if (this.#error) return Promise.reject(this.#error);
    this.#postShared();
    const id = ++this.#ids;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, resolve);
      this.#fail.push(reject);
      this.#worker.postMessage({ type: "digest", id });
    });
  }

  #postShared(): void {
    if (!this.#shared) return;
    this.#worker.postMessage({ type: "update", bytes: this.#shared });
    this.#shared = null;
  }

  /** Stops the Worker. */
  close(): void {
    this.#worker.terminate();
  }
}
