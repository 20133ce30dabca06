import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { buildStream } from "./stream/_test_util.ts";
import {
  type DomainSaver,
  migrateXenDomain,
  XenMigrateError,
} from "./migrate_domain.ts";
import type { SaveEvent } from "./save.ts";
import {
  decodeXlSaveHeader,
  encodeLibxlRecord,
  encodeXlSaveHeader,
  LibxlRecType,
  XlMandatoryFlag,
  XlMessage,
  xlStreamPrefix,
} from "./xl_protocol.ts";
import { XenStreamError } from "./stream/errors.ts";

const RECEIVER = new URL("./_fake_xl_receiver.ts", import.meta.url).pathname;
const DENO = Deno.execPath();

const plan = { name: "test", maxRounds: 5, decide: () => "continue" as const };

/** A fake `xl` that logs its arguments and answers domid/list/rename/destroy. */
async function fakeXl(
  dir: string,
  config: Record<string, unknown>,
  domid = 7,
): Promise<{ xl: string; calls: () => string[] }> {
  const log = `${dir}/xl.log`;
  const json = `${dir}/list.json`;
  await Deno.writeTextFile(json, JSON.stringify([{ domid, config }], null, 4));
  const xl = `${dir}/xl`;
  await Deno.writeTextFile(
    xl,
    `#!/bin/sh\necho "$*" >> '${log}'\ncase "$1" in\n` +
      `  domid) echo ${domid};;\n  list) cat '${json}';;\n  *) ;;\nesac\n`,
  );
  await Deno.chmod(xl, 0o755);
  return {
    xl,
    calls: () => {
      try {
        return Deno.readTextFileSync(log).trim().split("\n");
      } catch {
        return [];
      }
    },
  };
}

/** A saver that writes a synthetic libxc image into the FIFO, as libxc would. */
function fakeSaver(
  image: Uint8Array,
  mode: "ok" | "fail-before-open" | "fail-midway" = "ok",
): DomainSaver & { suspended: boolean } {
  const saver = {
    suspended: false,
    async save(o: {
      fifoPath: string;
      onEvent?: (e: SaveEvent) => void;
    }) {
      const at = () => performance.timeOrigin + performance.now();
      if (mode === "fail-before-open") {
        throw new Error("xc_domain_save returned -1");
      }
      const f = await Deno.open(o.fifoPath, { write: true });
      const events: SaveEvent[] = [{ name: "opened", at: at() }];
      o.onEvent?.(events[0]);
      try {
        const half = Math.floor(image.length / 2);
        await f.write(image.subarray(0, half)).then(async (n) => {
          let w = n;
          while (w < half) w += await f.write(image.subarray(w, half));
        });
        const req: SaveEvent = { name: "suspend-requested", at: at() };
        o.onEvent?.(req);
        saver.suspended = true;
        const done: SaveEvent = { name: "suspended", at: at() };
        o.onEvent?.(done);
        if (mode === "fail-midway") {
          throw new Error("xc_domain_save returned -1");
        }
        let w = half;
        while (w < image.length) w += await f.write(image.subarray(w));
        events.push(req, done);
      } finally {
        f.close();
      }
      return { rc: 0, calls: [], events, writtenBytes: image.length };
    },
  };
  return saver;
}

const CONFIG = {
  c_info: { type: "pvh", name: "guest" },
  b_info: { max_memkb: 131072 },
};

async function scenario(
  receiverArgs: string[],
  mode: "ok" | "fail-before-open" | "fail-midway" = "ok",
  config: Record<string, unknown> = CONFIG,
  extra: Partial<Parameters<typeof migrateXenDomain>[0]> = {},
) {
  const dir = await Deno.makeTempDir({ prefix: "hakobu-migrate-test-" });
  const { xl, calls } = await fakeXl(dir, config);
  const image = buildStream({ seed: 3, pfns: 200, rounds: 3 }).bytes;
  const saver = fakeSaver(image, mode);
  const resumed: number[] = [];
  const out = `${dir}/seen.json`;
  let result, error;
  try {
    result = await migrateXenDomain({
      domain: "guest",
      plan,
      xl,
      receiver: `exec '${DENO}' run -A --no-lock '${RECEIVER}' --out '${out}' ${
        receiverArgs.join(" ")
      }`,
      saver,
      resume: (d) => {
        resumed.push(d);
        return saver.suspended;
      },
      ...extra,
    });
  } catch (e) {
    error = e;
  }
  let seen: Record<string, unknown> = {};
  try {
    seen = JSON.parse(await Deno.readTextFile(out));
  } catch {
    // the receiver died before writing
  }
  const xlCalls = calls();
  await Deno.remove(dir, { recursive: true });
  return { result, error, seen, xlCalls, resumed, image };
}

Deno.test("xl save header: golden bytes and round trip", () => {
  const h = encodeXlSaveHeader('{"a":1}');
  assert.equal(
    new TextDecoder().decode(h.subarray(0, 32)),
    "Xen saved domain, xl format\n \0 \r",
  );
  assert.deepEqual(
    [...h.subarray(32, 52)],
    [4, 3, 2, 1, 3, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 8, 0, 0, 0],
  );
  assert.equal(new TextDecoder().decode(h.subarray(52)), '{"a":1}\0');
  const d = decodeXlSaveHeader(h);
  assert.equal(d.config, '{"a":1}');
  assert.equal(
    d.mandatoryFlags,
    XlMandatoryFlag.JSON | XlMandatoryFlag.STREAM_V2,
  );
  assert.equal(d.length, h.length);
  // libxl framing: "LibxlFmt", version 2 big-endian, options 0, LIBXC_CONTEXT
  const p = xlStreamPrefix("{}");
  const libxl = p.subarray(encodeXlSaveHeader("{}").length);
  assert.deepEqual(
    [...libxl],
    [
      ...new TextEncoder().encode("LibxlFmt"),
      0,
      0,
      0,
      2,
      0,
      0,
      0,
      0,
      1,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
    ],
  );
  assert.deepEqual([...encodeLibxlRecord(LibxlRecType.END)], [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ]);
  assert.deepEqual(
    [...encodeLibxlRecord(9, new Uint8Array([1, 2, 3]))],
    [9, 0, 0, 0, 3, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0],
  );
  assert.equal(XlMessage.go.at(-1), 0);
  assert.equal(XlMessage.banner.at(-1), 10);
});

Deno.test("xl save header: bad input is rejected with the reason", () => {
  const h = encodeXlSaveHeader('{"a":1}');
  assert.throws(
    () => decodeXlSaveHeader(h.subarray(0, 20)),
    /Truncated xl save header/,
  );
  const magic = h.slice();
  magic[3] ^= 1;
  assert.throws(() => decodeXlSaveHeader(magic), XenStreamError);
  const order = h.slice();
  order[32] = 1;
  assert.throws(() => decodeXlSaveHeader(order), /byte order/);
  const flags = h.slice();
  flags[36] |= 0x10;
  assert.throws(
    () => decodeXlSaveHeader(flags),
    /unknown mandatory flags 0x10/,
  );
  assert.throws(
    () => decodeXlSaveHeader(h.subarray(0, h.length - 2)),
    /optional data/,
  );
  const overrun = h.slice();
  overrun[48] = 200;
  assert.throws(() => decodeXlSaveHeader(overrun), /overruns/);
});

Deno.test("migrateXenDomain speaks xl's handshake: the receiver gets the config, the exact image and GO; the old domain is renamed away and destroyed", async () => {
  const r = await scenario([]);
  assert.equal(r.error, undefined, String(r.error));
  const seen = r.seen;
  assert.equal(seen.error, undefined);
  assert.deepEqual(seen.config, CONFIG);
  assert.equal(seen.libxlIdent, true);
  assert.equal(seen.libxlVersion, 2);
  assert.equal(seen.libxcContext, true);
  assert.equal(seen.imageBytes, r.image.length);
  assert.equal(
    seen.imageSha256,
    createHash("sha256").update(r.image).digest("hex"),
  );
  assert.ok((seen.pages as number) > 0);
  assert.equal(seen.libxlEnd, true);
  assert.equal(seen.gotGo, true);
  assert.deepEqual(r.xlCalls, [
    "domid guest",
    "list -l 7",
    "rename 7 guest--migratedaway",
    "destroy 7",
  ]);
  assert.deepEqual(r.resumed, []);
  const res = r.result!;
  assert.equal(res.domid, 7);
  assert.equal(res.name, "guest");
  assert.equal(res.type, "pvh");
  assert.equal(res.imageBytes, r.image.length);
  assert.equal(
    res.streamBytes,
    xlStreamPrefix(JSON.stringify(CONFIG)).length + r.image.length + 8 +
      XlMessage.go.length,
  );
  for (
    const k of [
      "banner",
      "suspend-requested",
      "suspended",
      "saved",
      "ready",
      "go",
      "report",
      "destroyed",
    ]
  ) {
    assert.ok(k in res.timeline, `timeline lacks ${k}`);
  }
  assert.ok(res.downtimeMs >= 0 && res.downtimeMs <= res.totalTimeMs);
  // A MigrationReport like every backend's: the fake saver asked no policy
  // call, so there is only the stop-and-copy round, its pages estimated
  // from the image; the stock receiver compared nothing.
  assert.equal(res.backend, "xen");
  assert.equal(res.verification, "none");
  assert.equal(res.verified, false);
  assert.match(
    res.outcome,
    /^completed: the receiver reports domain "guest" running/,
  );
  assert.equal(res.rounds.length, 1);
  assert.equal(res.rounds[0].final, true);
  assert.equal(res.rounds[0].pagesSent, Math.round(r.image.length / 4096));
  assert.equal(res.wireBytes, res.streamBytes);
  assert.equal(res.memoryBytes, 131072 * 1024);
});

Deno.test("migrateXenDomain: a verify hook makes the report stream-verified", async () => {
  const r = await scenario([], "ok", CONFIG, {
    verify: () =>
      Promise.resolve({
        verified: true,
        sourceDigest: "ab".repeat(32),
        destinationDigest: "ab".repeat(32),
        detail: "digests equal",
      }),
  });
  assert.equal(r.error, undefined, String(r.error));
  assert.equal(r.result!.verification, "stream-digest");
  assert.equal(r.result!.verified, true);
  assert.equal(r.result!.digest, "ab".repeat(32));
  assert.match(r.result!.outcome, /^completed and verified: digests equal/);
  assert.ok("verified" in r.result!.timeline);
});

Deno.test("migrateXenDomain: a receiver that fails to start the domain gets the source renamed back and resumed", async () => {
  const r = await scenario(["--status", "1"]);
  assert.ok(r.error instanceof XenMigrateError);
  assert.match(
    r.error.message,
    /starting the domain failed \(status 1\).*resumed at the source/,
  );
  assert.equal(r.error.resumed, true);
  assert.deepEqual(r.xlCalls, [
    "domid guest",
    "list -l 7",
    "rename 7 guest--migratedaway",
    "rename 7 guest",
  ]);
  assert.deepEqual(r.resumed, [7]);
});

Deno.test("migrateXenDomain: a receiver that dies after its banner fails the migration and the domain runs on", async () => {
  const r = await scenario(["--die-after-banner"]);
  assert.ok(r.error instanceof XenMigrateError);
  assert.equal(r.error.resumed, true);
  // the stream broke before the save began: never renamed, never destroyed
  assert.deepEqual(r.xlCalls, ["domid guest", "list -l 7"]);
  // the header may still fit the pipe's buffer; then the save's first
  // write is the one that breaks
  assert.match(r.error.message, /Broken pipe.*runs on at the source/);
});

Deno.test("migrateXenDomain: a wrong banner is named and nothing is saved", async () => {
  const r = await scenario(["--banner", "'hello from ssh'"]);
  assert.ok(r.error instanceof XenMigrateError);
  assert.match(r.error.message, /instead of xl's banner/);
  assert.deepEqual(r.xlCalls, ["domid guest", "list -l 7"]);
});

Deno.test("migrateXenDomain: a save that fails before or during the stream resumes the domain", async () => {
  const before = await scenario([], "fail-before-open");
  assert.ok(before.error instanceof XenMigrateError);
  assert.match(before.error.message, /xc_domain_save returned -1/);
  assert.match(before.error.message, /not suspended and runs on at the source/);
  const midway = await scenario([], "fail-midway");
  assert.ok(midway.error instanceof XenMigrateError);
  assert.match(midway.error.message, /resumed at the source/);
  assert.deepEqual(midway.resumed, [7]);
  assert.ok(!midway.xlCalls.some((c) => c.startsWith("destroy")));
  assert.equal(midway.xlCalls.at(-1), "rename 7 guest");
});

Deno.test("migrateXenDomain refuses HVM guests before touching them", async () => {
  const r = await scenario([], "ok", { c_info: { type: "hvm", name: "win" } });
  assert.ok(r.error instanceof XenMigrateError);
  assert.match(r.error.message, /it is HVM/);
  assert.deepEqual(r.xlCalls, ["domid guest", "list -l 7"]);
  assert.deepEqual(r.resumed, []);
});
