/**
 * Text that came from the other side of a connection, made safe to print.
 *
 * A peer chooses its VM name, its policy name, its ABORT reason and its
 * ERROR message. Printed as sent, a newline lets it forge a line of our own
 * output (`VERIFIED: prod-db-01`), an escape sequence can rewrite the
 * terminal, and a bidirectional override can make text read differently
 * from what it is. Every string a peer sends goes through {@link peerText}
 * when it is decoded (`messages.ts`), so no log or terminal sees it raw.
 *
 * @module
 */

/**
 * C0 controls (tab included), DEL, C1 controls, the Unicode line and
 * paragraph separators, and the bidirectional embedding, override and
 * isolate marks.
 */
const UNSAFE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Returns `text` with every control character, line separator and
 * bidirectional mark replaced by a visible `\u{..}` escape, so that the
 * result is one line that reads as what it is. Printable text, including
 * any script, is kept as it was.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { peerText } from "@hakobu/hakobu";
 *
 * assert.equal(peerText("db\nVERIFIED: prod"), "db\\u{a}VERIFIED: prod");
 * assert.equal(peerText("\x1b[2Jx"), "\\u{1b}[2Jx");
 * assert.equal(peerText("メモリ"), "メモリ");
 * ```
 */
export function peerText(text: string): string {
  return text.replace(
    UNSAFE,
    (c) => `\\u{${c.charCodeAt(0).toString(16)}}`,
  );
}
