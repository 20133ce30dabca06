/**
 * A stand-in for `xl migrate-receive` in tests of `migrate_domain.ts`: it
 * speaks xl's handshake on stdin/stdout and checks what arrives with
 * hakobu's own decoders (xl header, libxl framing, the libxc image through
 * `XenStreamParser`), then writes what it saw as JSON to `--out`.
 *
 * ```sh
 * deno run -A engine/xen/_fake_xl_receiver.ts --out result.json [--status N] [--die-after-banner] [--banner TEXT]
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { XenStreamParser } from "./stream/parser.ts";
import {
  decodeXlSaveHeader,
  LIBXL_STREAM_IDENT,
  LibxlRecType,
  XL_SAVE_HEADER_BYTES,
  XlMessage,
} from "./xl_protocol.ts";

// A test program: node:util's parseArgs, so that the engine's module graph
// stays free of command-line packages (engine/dependencies_test.ts).
const parsed = parseArgs({
  args: Deno.args,
  options: {
    out: { type: "string" },
    status: { type: "string", default: "0" },
    "die-after-banner": { type: "boolean" },
    banner: { type: "string" },
  },
}).values;
if (!/^\d+$/.test(parsed.status) || Number(parsed.status) > 255) {
  throw new Error(
    `--status: expected a whole number from 0 to 255, got "${parsed.status}"`,
  );
}
const values = {
  out: parsed.out,
  status: Number(parsed.status),
  dieAfterBanner: parsed["die-after-banner"] === true,
  banner: parsed.banner,
};

const out = Deno.stdout.writable.getWriter();
const reader = Deno.stdin.readable.getReader();
let buf = new Uint8Array(0);
let eof = false;

async function more(): Promise<void> {
  const { value, done } = await reader.read();
  if (done) {
    eof = true;
    return;
  }
  const next = new Uint8Array(buf.length + value.length);
  next.set(buf);
  next.set(value, buf.length);
  buf = next;
}

async function need(n: number): Promise<void> {
  while (buf.length < n && !eof) await more();
  if (buf.length < n) {
    throw new Error(`stdin ended at ${buf.length} of ${n} bytes`);
  }
}

const seen: Record<string, unknown> = {};
try {
  await out.write(
    values.banner !== undefined
      ? new TextEncoder().encode(values.banner)
      : XlMessage.banner,
  );
  if (values.dieAfterBanner) Deno.exit(3);

  await need(XL_SAVE_HEADER_BYTES);
  const optLen = new DataView(buf.buffer).getUint32(44, true);
  await need(XL_SAVE_HEADER_BYTES + optLen + 24);
  const header = decodeXlSaveHeader(buf);
  seen.config = JSON.parse(header.config);
  seen.mandatoryFlags = header.mandatoryFlags;
  const libxl = buf.subarray(header.length, header.length + 24);
  const dv = new DataView(libxl.buffer, libxl.byteOffset, 24);
  seen.libxlIdent = LIBXL_STREAM_IDENT.every((b, i) => libxl[i] === b);
  seen.libxlVersion = dv.getUint32(8, false);
  seen.libxcContext = dv.getUint32(16, true) === LibxlRecType.LIBXC_CONTEXT &&
    dv.getUint32(20, true) === 0;

  // The libxc image, to its END record.
  const imageStart = header.length + 24;
  const parser = new XenStreamParser({ scan: true });
  const hash = createHash("sha256");
  let fed = imageStart;
  let imageEnd = -1;
  let pages = 0;
  while (imageEnd < 0) {
    if (fed === buf.length) {
      await more();
      if (eof) throw new Error("stdin ended inside the libxc image");
    }
    for (const e of parser.push(buf.subarray(fed))) {
      if (e.kind === "pages") pages += e.count;
      if (e.kind === "end") imageEnd = imageStart + e.offset + e.bytes.length;
    }
    fed = buf.length;
  }
  hash.update(buf.subarray(imageStart, imageEnd));
  seen.imageBytes = imageEnd - imageStart;
  seen.imageSha256 = hash.digest("hex");
  seen.pages = pages;
  await need(imageEnd + 8);
  const end = new DataView(buf.buffer, imageEnd, 8);
  seen.libxlEnd = end.getUint32(0, true) === LibxlRecType.END &&
    end.getUint32(4, true) === 0;

  await out.write(XlMessage.ready);
  await need(imageEnd + 8 + XlMessage.go.length);
  const go = buf.subarray(imageEnd + 8, imageEnd + 8 + XlMessage.go.length);
  seen.gotGo = go.every((b, i) => b === XlMessage.go[i]);
  const status = values.status;
  await out.write(XlMessage.report);
  await out.write(new Uint8Array([status]));
  if (status !== 0) await out.write(XlMessage.go); // permission to resume
} catch (e) {
  seen.error = e instanceof Error ? e.message : String(e);
}
if (values.out) Deno.writeTextFileSync(values.out, JSON.stringify(seen));
await out.close().catch(() => {});
