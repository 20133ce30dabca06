/**
 * Accepting connections on a listener that must outlive its peers.
 *
 * `Listener.accept()` rejects when the connection it took had already been
 * reset in the backlog ("Transport endpoint is not connected", os error
 * 107): that is the peer's failure, not the listener's, and one dying
 * client must not end a receiver that serves others.
 *
 * @module
 */

/** Pause after a failed accept, so that a persistent failure (out of file descriptors) does not spin. */
const RETRY_MS = 10;

/**
 * Whether an accept error means the listener itself is gone (closed by
 * us), rather than one connection having failed.
 */
function listenerGone(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted;
}

/**
 * The next connection on `listener`, passing over connections that failed
 * before they were accepted (each reported to `onError`). Rejects only when
 * the listener is closed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { acceptNext } from "@hakobu/hakobu";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const dialing = Deno.connect({
 *   hostname: "127.0.0.1",
 *   port: listener.addr.port,
 * });
 * const conn = await acceptNext(
 *   listener,
 *   (e) => console.error(`accept failed: ${e.message}`),
 * );
 * assert.equal(conn.localAddr.transport, "tcp");
 * conn.close();
 * (await dialing).close();
 * listener.close();
 * // Only a closed listener ends the loop:
 * await assert.rejects(acceptNext(listener), Deno.errors.BadResource);
 * ```
 */
export async function acceptNext<C extends Deno.Conn>(
  listener: { accept(): Promise<C> },
  onError: (error: Error) => void = () => {},
): Promise<C> {
  for (;;) {
    try {
      return await listener.accept();
    } catch (error) {
      if (listenerGone(error)) throw error;
      onError(error instanceof Error ? error : new Error(String(error)));
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
}
