/**
 * The SHA-256 of a stream, hashed on a Worker of its own: a tunnel's main
 * thread parses (sender) or rebuilds (receiver) the stream and would
 * otherwise spend a good part of its time hashing it. Each update hands the
 * Worker a copy (a memcpy costs a fraction of hashing), so the caller keeps
 * its bytes.
 *
 * @module
 */

/**
 * A running SHA-256 of bytes given in order.
 *
 * @example
 * ```ts ignore
 * const h = new StreamHasher();
 * h.update(new TextEncoder().encode("abc"));
 * const d = await h.digest(); // ba7816bf...
 * h.close();
 * ```
 */
export class StreamHasher {
  readonly #worker: Worker;
  #ids = 0;
  readonly #waiting = new Map<number, (d: Uint8Array) => void>();
  #error: Error | null = null;
  #fail: ((e: Error) => void)[] = [];

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

  /** Adds `bytes` (copied). */
  update(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const copy = bytes.slice();
    this.#worker.postMessage({ type: "update", bytes: copy }, {
      transfer: [copy.buffer],
    });
  }

  /** The SHA-256 of everything given so far (the hash then starts over). */
  digest(): Promise<Uint8Array> {
    if (this.#error) return Promise.reject(this.#error);
    const id = ++this.#ids;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, resolve);
      this.#fail.push(reject);
      this.#worker.postMessage({ type: "digest", id });
    });
  }

  /** Stops the Worker. */
  close(): void {
    this.#worker.terminate();
  }
}
