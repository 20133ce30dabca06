import { HakobuError } from "../../errors.ts";

/** A peer could not be authenticated or authorised, or the security handshake failed. */
export class ChannelAuthError extends HakobuError {
  /** The peer's address (`host:port`), when known. */
  readonly peer: string | undefined;
  /**
   * Creates the error.
   *
   * @param message What failed and why.
   * @param peer The peer's address, when known.
   * @param options Passed on to `Error` (e.g. `cause`).
   */
  constructor(message: string, peer?: string, options?: ErrorOptions) {
    super(message, options);
    this.peer = peer;
  }
}
