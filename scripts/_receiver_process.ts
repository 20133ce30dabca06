/**
 * `hakobu receive` in a second process, as the demo and the seed table run
 * it: on a loopback port it picks, one JSON verdict line per migration.
 *
 * @module
 */

/** A running `hakobu receive --listen 127.0.0.1:0 --json`. */
export class ReceiverProcess implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  /** The address it listens on. */
  readonly hostname: string;
  /** The port it listens on. */
  readonly port: number;

  private constructor(
    child: Deno.ChildProcess,
    lines: ReadableStreamDefaultReader<string>,
    hostname: string,
    port: number,
  ) {
    this.#child = child;
    this.#lines = lines;
    this.hostname = hostname;
    this.port = port;
  }

  /**
   * Starts it with `flags` added (e.g. `["--once"]`) and waits for its
   * `listening on HOST:PORT` line; its stderr goes to ours.
   *
   * @throws {Error} with what it printed instead, when it did not start.
   */
  static async start(flags: readonly string[] = []): Promise<ReceiverProcess> {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./hakobu.ts", import.meta.url).pathname,
        "receive",
        "--listen",
        "127.0.0.1:0",
        "--json",
        ...flags,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = child.stdout
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(splitLines())
      .getReader();
    const first = await lines.read();
    const m = /listening on (\S+):(\d+)/.exec(first.value ?? "");
    if (!m) {
      try {
        child.kill();
      } catch { /* already gone */ }
      throw new Error(
        `Cannot start the receiver: it printed "${first.value ?? ""}"`,
      );
    }
    return new ReceiverProcess(child, lines, m[1], Number(m[2]));
  }

  /** Its process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Resolves when it exits. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#child.status;
  }

  /** The receiver's verdict on the migration that just ended (its next line). */
  async verdict(): Promise<{ verified: boolean; line: string }> {
    const next = await this.#lines.read();
    const line = next.value ?? "";
    try {
      return { verified: JSON.parse(line).verified === true, line };
    } catch {
      return { verified: false, line };
    }
  }

  /** Stops it at once (SIGTERM). */
  kill(): void {
    try {
      this.#child.kill("SIGTERM");
    } catch { /* already gone */ }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.kill();
    await this.#lines.cancel().catch(() => {});
    await this.#child.status;
  }
}

/** Splits text into lines (without their `\n`); a last unterminated line still comes out. */
function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, ctl) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const p of parts) ctl.enqueue(p);
    },
    flush(ctl) {
      if (rest) ctl.enqueue(rest);
    },
  });
}
