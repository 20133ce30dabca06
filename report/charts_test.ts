import assert from "node:assert/strict";
import { DOMParser, type Element } from "@xmldom/xmldom";
import {
  CHART_NAMES,
  renderReportHtml,
  renderReportSvg,
} from "./charts.ts";
import type { MigrationReport, RoundReport } from "../engine/report.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

function round(
  i: number,
  dirtyPages: number,
  extra: Partial<RoundReport> = {},
): RoundReport {
  const raw = dirtyPages * 4096;
  return {
    round: i,
    final: false,
    dirtyPages,
    pagesSent: dirtyPages,
    rawBytes: raw,
    wireBytes: Math.round(raw * 1.004),
    codecMix: { raw: dirtyPages },
    codecs: ["zero", "raw"],
    durationMs: raw / 25e6 * 1000,
    dirtyRate: 20e6 + i * 1e6,
    sendRate: 25e6,
    wireRate: 25.1e6,
    remainingPages: Math.round(dirtyPages * 0.8),
    decision: "continue",
    reason: "continue: nothing to stop for",
    ...extra,
  };
}

/** A report with `n` live rounds and the stop-and-copy round. */
function makeReport(
  n = 4,
  extra: Partial<MigrationReport> = {},
): MigrationReport {
  const rounds: RoundReport[] = [
    round(0, 65536, {
      codecMix: { zero: 57000, raw: 8536 },
      wireBytes: 8536 * 4112 + 57000 * 16,
      sendRate: 100e6,
    }),
  ];
  for (let i = 1; i < n; i++) {
    rounds.push(round(i, Math.round(9000 * 0.8 ** i)));
  }
  rounds.push(
    round(n, 4000, {
      final: true,
      decision: "final",
      reason: "stop-and-copy",
      remainingPages: 0,
    }),
  );
  const rawBytes = rounds.reduce((s, r) => s + r.rawBytes, 0);
  const wireBytes = rounds.reduce((s, r) => s + r.wireBytes, 0);
  return {
    verified: true,
    verification: "memory-digest",
    aborted: false,
    outcome: "migrated and verified (switchover: remaining 11.72 MiB)",
    policy: "test-policy",
    vm: "sim:memcached 256.00 MiB seed 1",
    memoryBytes: 256 * 2 ** 20,
    pageSize: 4096,
    bandwidth: 25e6,
    startedAt: "2026-11-27T04:00:00.000Z",
    totalTimeMs: 6123,
    downtimeMs: 512,
    verifyMs: 700,
    wireBytes,
    rawBytes,
    compressionRatio: rawBytes / wireBytes,
    pagesSent: rounds.reduce((s, r) => s + r.pagesSent, 0),
    sourceCpuSeconds: 1.25,
    sourceCpuSecondsPerGiB: 3.1,
    digest: "ab".repeat(32),
    gpu: {
      used: false,
      adapter: null,
      pagesEncoded: 0,
      note: "not used: the plan prefers the CPU",
    },
    rounds,
    ...extra,
  };
}

function parseXml(text: string): Element {
  const problems: string[] = [];
  const doc = new DOMParser({
    onError: (level: string, msg: string) => problems.push(`${level}: ${msg}`),
  }).parseFromString(text, "image/svg+xml");
  assert.deepEqual(problems, [], "the SVG is well-formed XML");
  const root = doc.documentElement;
  assert.ok(root);
  return root;
}

function all(root: Element, tag = "*"): Element[] {
  return Array.from(root.getElementsByTagName(tag));
}

function chart(root: Element, name: string): Element {
  const groups = all(root, "g").filter((g) =>
    (g.getAttribute("class") ?? "").split(/\s+/).includes(`chart_${name}_group`)
  );
  assert.equal(groups.length, 1, `one group for chart ${name}`);
  return groups[0];
}

function withRole(root: Element, role: string): Element[] {
  return all(root).filter((e) =>
    e.getAttribute("aria-roledescription") === role
  );
}

function texts(root: Element): string[] {
  return all(root, "text").map((t) => t.textContent ?? "");
}

const TITLES: Record<string, string> = {
  dirty_pages: "Dirty pages per round",
  bytes: "Bytes per round: raw pages against the wire",
  rates: "Send rate against dirty rate per live round",
  codec_mix: "Codec mix per round",
  time: "Time",
};

Deno.test("renderReportSvg: standalone SVG with one titled chart per concern and one mark per datum", async () => {
  const report = makeReport(4);
  const svg = await renderReportSvg(report);
  const root = parseXml(svg);
  assert.equal(root.tagName, "svg");
  assert.equal(root.getAttribute("xmlns"), "http://www.w3.org/2000/svg");
  assert.ok(Number(root.getAttribute("width")) > 600);
  assert.ok(Number(root.getAttribute("height")) > 1000);

  const n = report.rounds.length;
  const live = report.rounds.filter((r) => !r.final).length;
  for (const name of CHART_NAMES) {
    const g = chart(root, name);
    const titles = withRole(g, "title");
    assert.equal(titles.length, 1, `chart ${name} has one title`);
    assert.deepEqual(texts(titles[0]), [TITLES[name]]);
  }
  assert.equal(withRole(chart(root, "dirty_pages"), "bar").length, n);
  assert.equal(withRole(chart(root, "bytes"), "bar").length, 2 * n);
  // Three series (send, wire, dirty) over the live rounds.
  assert.equal(withRole(chart(root, "rates"), "point").length, 3 * live);
  assert.equal(withRole(chart(root, "rates"), "line mark").length, 3);
  const mixEntries = report.rounds.reduce(
    (s, r) => s + Object.values(r.codecMix).filter((v) => v > 0).length,
    0,
  );
  assert.equal(withRole(chart(root, "codec_mix"), "bar").length, mixEntries);
  assert.equal(withRole(chart(root, "time"), "bar").length, 4);
  // The overall title names the VM.
  assert.ok(
    withRole(root, "title").some((t) =>
      texts(t).join("") === `hakobu migration: ${report.vm}`
    ),
  );
});

Deno.test("renderReportSvg: axis titles carry units and numbers are formatted", async () => {
  const svg = await renderReportSvg(makeReport(4));
  const root = parseXml(svg);
  const axisTitles = all(root, "g")
    .filter((g) => (g.getAttribute("class") ?? "").includes("role-axis-title"))
    .flatMap(texts);
  for (
    const want of [
      "dirty pages (count)",
      "MiB",
      "Mbit/s",
      "share of pages sent (%)",
      "time (s)",
      "round",
    ]
  ) {
    assert.ok(
      axisTitles.some((t) => t.startsWith(want)),
      `axis title "${want}" in ${JSON.stringify(axisTitles)}`,
    );
  }
  const labels = texts(chart(root, "dirty_pages"));
  assert.ok(labels.includes("65,536"), "thousands separators on values");
  assert.ok(labels.includes("4 (stop)"), "the stop-and-copy round is labelled");
  assert.ok(texts(chart(root, "codec_mix")).includes("100%"));
  assert.ok(
    texts(chart(root, "time")).some((t) =>
      t === "downtime (VM paused): 512 ms"
    ),
  );
});

Deno.test("renderReportSvg: a dirty set spanning decades gets a log axis", async () => {
  const report = makeReport(3);
  const rounds = report.rounds.map((r, i) =>
    i === 1 ? { ...r, dirtyPages: 100, pagesSent: 100 } : r
  );
  const root = parseXml(await renderReportSvg({ ...report, rounds }));
  assert.ok(
    texts(chart(root, "dirty_pages")).includes(
      "dirty pages (count, log scale)",
    ),
  );
});

Deno.test("renderReportSvg: a report without rounds still renders", async () => {
  const report = makeReport(1, {
    rounds: [],
    verified: false,
    aborted: true,
    outcome: "aborted by policy",
  });
  const root = parseXml(await renderReportSvg(report));
  assert.equal(withRole(root, "bar").length, 4, "only the time bars");
});

Deno.test("renderReportHtml: a completed migration hakobu compared nothing of shows no VERIFIED badge", async () => {
  const report = makeReport(2, {
    verified: false,
    verification: "none",
    digest: "",
    outcome:
      "completed: QEMU reported completion; not verified: QEMU's own transport carried the stream, hakobu compared nothing",
  });
  const html = await renderReportHtml(report);
  assert.match(
    html,
    /<span class="badge unchecked">COMPLETED, NOT CHECKED<\/span>/,
  );
  assert.doesNotMatch(html, />VERIFIED</);
  assert.doesNotMatch(html, /badge ok/);
});

Deno.test("renderReportHtml: summary, one table row per round, inline SVG, no external references", async () => {
  const report = makeReport(4, { vm: `sim:<script>alert("x")</script>` });
  const html = await renderReportHtml(report);
  assert.match(html, /^<!DOCTYPE html>/);
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(html)?.[1] ?? "";
  assert.equal(body.match(/<tr /g)?.length, report.rounds.length);
  assert.match(body, /<td>4 \(stop\)<\/td>/);
  assert.match(body, /<td>65,536<\/td>/);
  for (
    const want of [
      "verified",
      "test-policy",
      "6.12 s",
      "512 ms",
      "compression ratio",
      "1.25 s (3.10 s/GiB)",
    ]
  ) {
    assert.ok(html.includes(want), `summary shows "${want}"`);
  }
  assert.equal(html.match(/<svg[\s>]/g)?.length, 1, "one inline SVG");
  assert.ok(html.includes("chart_codec_mix_group"));
  assert.doesNotMatch(html, /https?:/i, "no URL at all");
  assert.doesNotMatch(html, /<script|<link|<img|@import|src=/i);
  assert.ok(!html.includes("<script>alert"), "text is escaped");
  assert.ok(html.includes("sim:&#60;script&#62;alert"));
});

async function chromium(args: string[]): Promise<string> {
  const out = await new Deno.Command(CHROMIUM, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(90_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name: "renderReportHtml: headless Chromium renders the page with its charts",
  ignore: !hasChromium,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "hakobu_report_" });
    try {
      const report = makeReport(5);
      const file = `${dir}/report.html`;
      await Deno.writeTextFile(file, await renderReportHtml(report));

      const png = `${dir}/r.png`;
      await chromium([
        `--user-data-dir=${dir}/profile-shot`,
        `--screenshot=${png}`,
        "--window-size=1200,1600",
        `file://${file}`,
      ]);
      const bytes = await Deno.readFile(png);
      assert.ok(bytes.length > 20_000, `PNG is ${bytes.length} bytes`);
      assert.deepEqual(
        Array.from(bytes.subarray(0, 8)),
        [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
        "PNG signature",
      );
      const ihdr = new DataView(bytes.buffer, bytes.byteOffset, 24);
      assert.equal(
        new TextDecoder().decode(bytes.subarray(12, 16)),
        "IHDR",
      );
      assert.equal(ihdr.getUint32(16), 1200, "width");
      assert.equal(ihdr.getUint32(20), 1600, "height");

      const dom = await chromium([
        `--user-data-dir=${dir}/profile-dom`,
        "--dump-dom",
        `file://${file}`,
      ]);
      assert.equal(dom.match(/<svg[\s>]/g)?.length, 1, "the SVG is in the DOM");
      for (const name of CHART_NAMES) {
        assert.ok(dom.includes(`chart_${name}_group`), `chart ${name} in DOM`);
      }
      assert.equal(
        dom.match(/aria-roledescription="title"/g)?.length,
        CHART_NAMES.length + 1,
      );
      assert.equal(
        dom.match(/<tr class="(live|final)"/g)?.length,
        report.rounds.length,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
