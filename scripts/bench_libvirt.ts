/**
 * `deno task bench:libvirt`: one guest on the libvirt lab (two libvirt
 * hosts on this machine, scripts/lab/libvirt_lab.ts) migrated back and forth
 * N times in each mode, side by side in one run: libvirt plain, libvirt's
 * own compression (xbzrle, mt; zstd is tried and libvirt 9.0 refuses it),
 * and libvirt with hakobu's codecs in the stream (`migrate_uri` to hakobu's
 * tunnel, `startLibvirtTunnel`: zero,lz4 and zero,zstd). For each: the
 * migration's wall time, the downtime the destination's completed job
 * reports, and the bytes between the hosts (a counting proxy in the stream
 * for libvirt's modes, the tunnel's wire bytes for hakobu's), and the
 * guest's data check on the destination after each run. Medians, and
 * ratios against plain. Needs root, libvirt and QEMU.
 *
 * ```sh
 * deno task bench:libvirt [--runs 3] [--memory 512] [--dirty light] [--modes plain,xbzrle,...] [--tls]
 * ```
 *
 * @module
 */

import { Option } from "@commander-js/extra-typings";
import { startLibvirtTunnel } from "../engine/backend/_libvirt_tunnel.ts";
import { generateCredentials } from "../engine/transport/secure/generate.ts";
import type { SecurityFlags } from "../engine/transport/secure/security.ts";
import {
  LibvirtConnection,
  MigrateFlags,
  type MigrateParams,
} from "../ffi/libvirt/mod.ts";
import { freePort } from "./lab/qemu_guest.ts";
import {
  type LibvirtHostName,
  proxiedMigration,
  startLibvirtLab,
} from "./lab/libvirt_lab.ts";
import {
  BENCH_MODES,
  type BenchMode,
  type BenchRun,
  formatTable,
  MODE_LABELS,
  type ModeResult,
  summarize,
  tunnelCodecs,
} from "./_bench_libvirt.ts";
import { integer, nameList, parsed } from "./_cli/options.ts";
import { cliProgram, parseOrExit } from "./_cli/program.ts";

const ROOT = new URL("../", import.meta.url).pathname;

function libvirtParams(mode: BenchMode, port: number): {
  flags: number;
  params: MigrateParams;
} {
  const { migrateUri, listenAddress } = proxiedMigration(port);
  const base = { migrateUri, listenAddress };
  const live = MigrateFlags.LIVE | MigrateFlags.PEER2PEER;
  switch (mode) {
    case "xbzrle":
      return {
        flags: live | MigrateFlags.COMPRESSED,
        params: { ...base, compression: ["xbzrle"] },
      };
    case "mt":
      return {
        flags: live | MigrateFlags.COMPRESSED,
        params: { ...base, compression: ["mt"], compressionMtThreads: 2 },
      };
    case "zstd":
      return {
        flags: live | MigrateFlags.COMPRESSED,
        params: { ...base, compression: ["zstd"] },
      };
    default:
      return { flags: live, params: base };
  }
}

if (import.meta.main) {
  const o = parseOrExit(
    cliProgram("bench_libvirt.ts", { usageExitCode: 2 })
      .description(
        "libvirt plain, libvirt's compression and libvirt through hakobu's tunnel, side by side on the libvirt lab.",
      )
      .option("--runs <n>", "runs per mode (medians)", integer({ min: 1 }), 3)
      .option(
        "--memory <MiB>",
        "the guest's memory",
        integer({ min: 160 }),
        512,
      )
      .addOption(
        new Option(
          "--dirty <rate>",
          "the guest's dirty rate: none, light, heavy",
        )
          .choices(["none", "light", "heavy"] as const).default(
            "light" as const,
          ),
      )
      .addOption(
        new Option("--modes <list>", `modes, of ${BENCH_MODES.join(",")}`)
          .argParser(
            parsed((t) =>
              nameList({ known: BENCH_MODES, what: "mode" })(t) as BenchMode[]
            ),
          ).default([...BENCH_MODES], BENCH_MODES.join(",")),
      )
      .option(
        "--tls",
        "hakobu's tunnel over TLS (fresh credentials); default plain TCP, as libvirt's own stream",
      )
      .option("--ports <a,b>", "the lab daemons' ports", "16541,16542")
      .option("--out <file>", "JSON output", `${ROOT}out/bench-libvirt.json`),
    Deno.args,
  );
  const ports = o.ports.split(",").map(Number) as [number, number];
  const pki = await Deno.makeTempDir({ prefix: "hakobu-bench-libvirt-" });
  await generateCredentials(pki, { receiverNames: ["127.0.0.1"] });
  const security: SecurityFlags = o.tls
    ? { tlsDir: pki }
    : { insecurePlain: true };
  await using lab = await startLibvirtLab({ ports });
  const name = "hakobu-bench";
  const g = await lab.startGuest("a", {
    name,
    memoryMiB: o.memory,
    dirty: o.dirty,
  });
  const boot = g.check!.boot;
  let at: LibvirtHostName = "a";
  console.log(
    `guest ${name}: ${o.memory} MiB, dirty ${o.dirty}; ${o.runs} runs per mode (the guest moves a <-> b)`,
  );
  const results: ModeResult[] = [];
  for (const mode of o.modes) {
    const runs: BenchRun[] = [];
    let refused: string | undefined;
    const codecs = tunnelCodecs(mode);
    const tunnel = codecs
      ? await startLibvirtTunnel({ codecs, security })
      : null;
    try {
      for (let i = 0; i < o.runs; i++) {
        const to: LibvirtHostName = at === "a" ? "b" : "a";
        const port = tunnel ? tunnel.port : freePort();
        const proxy = tunnel ? null : lab.startMigrationProxy(port);
        const { flags, params } = tunnel
          ? {
            flags: MigrateFlags.LIVE | MigrateFlags.PEER2PEER,
            params: tunnel.params,
          }
          : libvirtParams(mode, port);
        const mark = await lab.serialMark(to, name);
        using src = LibvirtConnection.open(lab.host(at).uri);
        using dom = src.lookupDomain(name);
        const t0 = performance.now();
        try {
          await dom.migrate(lab.host(to).uri, { flags, params });
        } catch (e) {
          await proxy?.close();
          if (mode === "zstd" && i === 0) {
            refused = (e as Error).message.replace(/^.*failed: /, "");
            break;
          }
          throw e;
        }
        const ms = performance.now() - t0;
        let linkBytes = 0;
        let verified: boolean | undefined;
        let verdictDetail: string | undefined;
        if (tunnel) {
          const v = await tunnel.verdict();
          verified = v.verified;
          verdictDetail = v.detail;
          linkBytes = tunnel.stats()?.wireBytes ?? 0;
        } else {
          await proxy!.close();
          linkBytes = proxy!.bytesUp + proxy!.bytesDown;
        }
        using dst = LibvirtConnection.open(lab.host(to).uri);
        using onDst = dst.lookupDomain(name);
        const downtimeMs = onDst.jobStats({ completed: true }).downtimeMs ??
          null;
        at = to;
        let checkError: string | null = null;
        await lab.checkGuest(to, name, { since: mark, boot }).catch((e) =>
          checkError = (e as Error).message.split("\n")[0]
        );
        runs.push({
          ms,
          downtimeMs,
          linkBytes,
          checkError,
          verified,
          ...(verdictDetail === undefined ? {} : { verdictDetail }),
        });
        console.log(
          `  ${MODE_LABELS[mode]} #${i + 1} -> ${to}: ${
            ms.toFixed(0)
          } ms, downtime ${downtimeMs} ms, ${
            (linkBytes / 2 ** 20).toFixed(1)
          } MiB on the link${
            verified === undefined
              ? ""
              : `, verdict ${
                verified ? "verified" : `NOT verified (${verdictDetail})`
              }`
          }, guest ${checkError ?? "ok"}`,
        );
      }
    } finally {
      await tunnel?.close();
    }
    if (refused) {
      console.log(`  ${MODE_LABELS[mode]}: refused by libvirt: ${refused}`);
    }
    results.push({ mode, runs, ...(refused ? { refused } : {}) });
  }
  await Deno.remove(pki, { recursive: true });
  const summaries = results.map(summarize);
  console.log(formatTable(summaries));
  await Deno.mkdir(new URL("out/", `file://${ROOT}`), { recursive: true });
  await Deno.writeTextFile(
    o.out,
    JSON.stringify(
      { memoryMiB: o.memory, dirty: o.dirty, results, summaries },
      null,
      2,
    ),
  );
  console.log(`wrote ${o.out}`);
}
