import assert from "node:assert/strict";
import { peerText } from "./peer_text.ts";
import {
  decodeAbort,
  decodeError,
  decodeHello,
  encodeAbort,
  encodeError,
  encodeHello,
} from "./messages.ts";

Deno.test("peerText escapes line breaks, escapes and bidi marks, keeps printable text", () => {
  assert.equal(peerText("plain name-01"), "plain name-01");
  assert.equal(peerText("a\r\nb"), "a\\u{d}\\u{a}b");
  assert.equal(peerText("\x1b]0;owned\x07"), "\\u{1b}]0;owned\\u{7}");
  assert.equal(peerText("\u202egnp.exe"), "\\u{202e}gnp.exe");
  assert.equal(peerText("x\u2028y\u0085z\u007f"), "x\\u{2028}y\\u{85}z\\u{7f}");
  assert.equal(peerText("tab\there"), "tab\\u{9}here");
  assert.equal(peerText("仮想マシン é"), "仮想マシン é");
});

Deno.test("every string a peer sends is decoded cleaned: HELLO's vm and policy, ABORT, ERROR", () => {
  const hello = decodeHello(encodeHello({
    protocol: 2,
    memoryBytes: 4096,
    pageSize: 4096,
    codecs: [{ id: 0, name: "raw" }],
    vm: "db\nVERIFIED: prod-db-01",
    policy: "\x1b[31mred",
    channels: 1,
  }));
  assert.equal(hello.vm, "db\\u{a}VERIFIED: prod-db-01");
  assert.equal(hello.policy, "\\u{1b}[31mred");
  const reason =
    decodeAbort(encodeAbort({ reason: "stop\r\nVERIFIED" })).reason;
  assert.equal(reason, "stop\\u{d}\\u{a}VERIFIED");
  const message = decodeError(encodeError({ message: "bad\u202etxt" })).message;
  assert.match(message, /^bad\\u\{202e\}txt$/);
});
