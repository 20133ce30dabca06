import { concatBytes } from "../../bytes.ts";
import { ChannelAuthError } from "./auth_error.ts";
import { type AuthMessage, decodeAuthMessage } from "./auth_message.ts";

/**
 * Reads exactly one security handshake message from `readable` within
 * `timeoutMs`, leaving the stream unlocked for the session that follows.
 *
 * @param what What is awaited, in words, for errors ("the source's AUTH").
 * @throws {ChannelAuthError} on a timeout, a closed connection, a malformed
 * message, or bytes after the message (the peer must wait for the answer).
 */
export async function readAuthMessage(
  readable: ReadableStream<Uint8Array>,
  timeoutMs: number,
  what: string,
  peer: string,
): Promise<AuthMessage> {
  const reader = readable.getReader();
  let buffered: Uint8Array = new Uint8Array(0);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ChannelAuthError(
            `No ${what} within ${timeoutMs} ms (${buffered.length} bytes came)`,
            peer,
          ),
        ),
      timeoutMs,
    );
  });
  try {
    for (;;) {
      const decoded = decodeAuthMessage(buffered);
      if (decoded) {
        if (decoded.bytes !== buffered.length) {
          throw new ChannelAuthError(
            `${
              buffered.length - decoded.bytes
            } bytes came after ${what}, before the answer`,
            peer,
          );
        }
        return decoded.message;
      }
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) {
        throw new ChannelAuthError(
          `Connection closed before ${what} (${buffered.length} bytes came)`,
          peer,
        );
      }
      buffered = concatBytes([buffered, value]);
    }
  } catch (e) {
    if (e instanceof ChannelAuthError) {
      throw e.peer ? e : new ChannelAuthError(e.message, peer);
    }
    throw new ChannelAuthError(
      `Connection failed while waiting for ${what}: ${
        (e as Error).message ?? e
      }`,
      peer,
      { cause: e },
    );
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
}
