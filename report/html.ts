/**
 * The HTML report: one self-contained page with the summary, the round
 * table and the charts as inline SVG (no scripts, no external URLs), to
 * open offline or attach to a ticket as one file.
 *
 * @module
 */

import type { MigrationReport } from "../engine/report.ts";
import { migrationStatus } from "../engine/report.ts";
import { formatBytes, formatDuration, formatRate } from "../engine/format.ts";
import { renderReportSvg } from "./charts/svg.ts";
import { codecMixText, ratioText, roundLabel, STATUS_WORDS } from "./_words.ts";

const BADGE_CLASS = {
  verified: "ok",
  unchecked: "unchecked",
  aborted: "bad",
  failed: "bad",
} as const;

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; background: #f6f7f9; color: #1d2330;
  font: 14px/1.45 Helvetica, Arial, "DejaVu Sans", sans-serif; }
main { max-width: 1100px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 10px; }
.sub { color: #5a6270; margin: 0 0 16px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: bold;
  font-size: 13px; vertical-align: middle; margin-left: 8px; }
.ok { background: #dff3e3; color: #1e6b34; }
.bad { background: #fbe1e1; color: #9b1c1c; }
.unchecked { background: #eceff3; color: #3d4450; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 10px; }
.card { background: #fff; border: 1px solid #e1e4ea; border-radius: 8px; padding: 10px 14px; }
.card dt { color: #5a6270; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card dd { margin: 2px 0 0; font-size: 17px; font-weight: bold; overflow-wrap: anywhere; }
.outcome { margin: 12px 0 0; color: #3a4150; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #e1e4ea; font-size: 13px; }
th, td { padding: 6px 10px; border-bottom: 1px solid #edf0f4; text-align: right; white-space: nowrap; }
th { background: #eef1f5; font-weight: bold; }
td.l, th.l { text-align: left; }
tr.final td { background: #fff6f6; }
.charts { background: #fff; border: 1px solid #e1e4ea; border-radius: 8px; padding: 8px; overflow-x: auto; }
.charts svg { display: block; max-width: 100%; height: auto; }
footer { margin-top: 24px; color: #7a8290; font-size: 12px; overflow-wrap: anywhere; }
`;

/**
 * Renders a self-contained HTML page for a report: the summary (result,
 * policy, VM, times, bytes, ratio, source CPU), the round table and the
 * charts as inline SVG. No scripts and no external URLs: it opens offline
 * and can be attached to a ticket as one file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderReportHtml } from "./html.ts";
 * import { sampleReport } from "./_sample_report.ts";
 *
 * const html = await renderReportHtml(sampleReport());
 * assert.match(html, /^<!DOCTYPE html>/);
 * assert.ok(html.includes('<span class="badge ok">VERIFIED</span>'));
 * assert.doesNotMatch(html, /<script|https?:/);
 * ```
 */
export async function renderReportHtml(
  report: MigrationReport,
): Promise<string> {
  const svg = (await renderReportSvg(report))
    .replace(/^<\?xml[^>]*>\s*/, "")
    // Namespaces are implied for inline SVG in HTML; dropping them keeps the
    // page free of any URL.
    .replace(/\s+xmlns(:xlink)?="[^"]*"/g, "")
    .trim();
  const live = report.rounds.filter((r) => !r.final).length;
  const cards: [string, string][] = [
    ["result", STATUS_WORDS[migrationStatus(report)]],
    ["policy", report.policy],
    ["vm", report.vm],
    ["total time", formatDuration(report.totalTimeMs)],
    ["downtime", formatDuration(report.downtimeMs)],
    ["wire bytes", formatBytes(report.wireBytes)],
    ["raw bytes", formatBytes(report.rawBytes)],
    ["compression ratio", `${report.compressionRatio.toFixed(2)}x`],
    [
      "source cpu",
      `${report.sourceCpuSeconds.toFixed(2)} s (${
        report.sourceCpuSecondsPerGiB.toFixed(2)
      } s/GiB)`,
    ],
    [
      "rounds",
      `${report.rounds.length} (${live} live + stop)`,
    ],
    [
      "link",
      report.bandwidth === null ? "unpaced" : formatRate(report.bandwidth),
    ],
    ["verify", formatDuration(report.verifyMs)],
    ...(report.backend
      ? [["backend", report.backend] as [string, string]]
      : []),
    ...Object.entries(report.notes ?? {}),
  ];
  const head = [
    "round",
    "dirty pages",
    "pages sent",
    "raw",
    "wire",
    "ratio",
    "codec mix",
    "time",
    "send rate",
    "dirty rate",
    "left",
    "decision",
  ];
  const rows = report.rounds.map((r) =>
    `<tr class="${r.final ? "final" : "live"}" title="${esc(r.reason)}">` +
    [
      roundLabel(r),
      r.dirtyPages.toLocaleString("en-US"),
      r.pagesSent.toLocaleString("en-US"),
      formatBytes(r.rawBytes),
      formatBytes(r.wireBytes),
      ratioText(r),
      codecMixText(r) || "-",
      formatDuration(r.durationMs),
      r.final ? "-" : formatRate(r.sendRate),
      r.final ? "-" : formatRate(r.dirtyRate),
      r.remainingPages.toLocaleString("en-US"),
      r.decision,
    ].map((c, i) =>
      `<td${i === 6 || i === 11 ? ' class="l"' : ""}>${esc(c)}</td>`
    ).join("") + "</tr>"
  ).join("\n");
  const st = migrationStatus(report);
  const badge = `<span class="badge ${BADGE_CLASS[st]}">${
    STATUS_WORDS[st].toUpperCase()
  }</span>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hakobu migration report: ${esc(report.vm)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>Migration report ${badge}</h1>
<p class="sub">${esc(report.vm)} · policy ${esc(report.policy)} · started ${
    esc(report.startedAt)
  }</p>
<section id="summary">
<dl class="cards">
${
    cards.map(([k, v]) =>
      `<div class="card"><dt>${esc(k)}</dt><dd>${esc(v)}</dd></div>`
    ).join("\n")
  }
</dl>
<p class="outcome">${esc(report.outcome)}</p>
</section>
<section id="rounds">
<h2>Rounds</h2>
<table>
<thead><tr>${
    head.map((h, i) =>
      `<th${i === 6 || i === 11 ? ' class="l"' : ""}>${esc(h)}</th>`
    ).join("")
  }</tr></thead>
<tbody>
${rows}
</tbody>
</table>
</section>
<section id="charts">
<h2>Charts</h2>
<div class="charts">
${svg}
</div>
</section>
<footer>memory ${formatBytes(report.memoryBytes)} in ${
    esc(String(report.pageSize))
  } B pages · ${report.pagesSent.toLocaleString("en-US")} pages sent · digest ${
    esc(report.digest || "-")
  }</footer>
</main>
</body>
</html>
`;
}
