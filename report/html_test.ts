import assert from "node:assert/strict";
import { CHART_NAMES } from "./charts/spec.ts";
import { renderReportHtml } from "./html.ts";
import { sampleReport } from "./_sample_report.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

Deno.test("renderReportHtml: a completed migration hakobu compared nothing of shows no VERIFIED badge", async () => {
  const report = sampleReport(2, {
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
  const report = sampleReport(4, { vm: `sim:<script>alert("x")</script>` });
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
      "6.90 s",
      "700 ms",
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
      const report = sampleReport(5);
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
