/**
 * A migration's progress while it runs, for `migrate`'s `onProgress`: a bar
 * on a terminal, a line per round elsewhere.
 *
 * @module
 */

import { formatBytes, formatDuration, formatRate } from "../engine/format.ts";
import type { MigrationProgress } from "../engine/precopy.ts";

const BAR = 28;

/** Options of {@link ProgressView}. */
export interface ProgressViewOptions {
  /** Draw the bar in place (default: whether stderr is a terminal). */
  readonly tty?: boolean;
  /** Where the text goes (default: stderr). */
  readonly write?: (text: string) => void;
}

/**
 * Shows migration progress: on a terminal, one bar redrawn in place with
 * round, pages, rate and ETA; otherwise a plain line per round, so logs and
 * pipes stay readable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProgressView } from "./progress.ts";
 *
 * let text = "";
 * const view = new ProgressView({ tty: false, write: (s) => text += s });
 * const progress = { round: 0, final: false, pagesDone: 10, pagesTotal: 100, wireBytes: 40960, elapsedMs: 5, pageSize: 4096, sendRate: 8e6 };
 * view.update(progress);
 * view.update({ ...progress, pagesDone: 20 }); // same round: no new line
 * view.update({ ...progress, round: 1, final: true, pagesTotal: 7 });
 * view.done();
 * assert.equal(text, "round 0: 100 pages to send\nstop-and-copy 1: 7 pages to send\n");
 * ```
 */
export class ProgressView {
  readonly #tty: boolean;
  readonly #out: (s: string) => void;
  #lastRound = -1;
  #drawn = false;

  /**
   * A view that writes to `options.write`, drawing in place when
   * `options.tty` says it may.
   */
  constructor(options: ProgressViewOptions = {}) {
    this.#tty = options.tty ?? Deno.stderr.isTerminal();
    const enc = new TextEncoder();
    this.#out = options.write ?? ((s) => Deno.stderr.writeSync(enc.encode(s)));
  }

  /** Draws one progress update. */
  update(p: MigrationProgress): void {
    if (!this.#tty) {
      if (p.round !== this.#lastRound) {
        this.#lastRound = p.round;
        this.#out(
          `${
            p.final ? "stop-and-copy" : "round"
          } ${p.round}: ${p.pagesTotal} pages to send\n`,
        );
      }
      return;
    }
    const frac = p.pagesTotal > 0 ? p.pagesDone / p.pagesTotal : 1;
    const filled = Math.round(frac * BAR);
    const left = (p.pagesTotal - p.pagesDone) * p.pageSize;
    const eta = p.sendRate > 0
      ? formatDuration((left / p.sendRate) * 1000)
      : "?";
    const label = p.final ? "stop " : `round ${String(p.round).padEnd(3)}`;
    const line =
      `${label} [${"#".repeat(filled)}${".".repeat(BAR - filled)}] ${
        (frac * 100).toFixed(0).padStart(3)
      }% ` +
      `${p.pagesDone}/${p.pagesTotal} pages  ${formatRate(p.sendRate)}  wire ${
        formatBytes(p.wireBytes)
      }  ETA ${eta}`;
    this.#out(`\r\x1b[2K${line}`);
    this.#drawn = true;
  }

  /** Ends the bar so later output starts on a fresh line. */
  done(): void {
    if (this.#tty && this.#drawn) this.#out("\r\x1b[2K");
    this.#drawn = false;
  }
}
