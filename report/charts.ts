/**
 * Charts of a {@link MigrationReport}, rendered server-side: a Vega-Lite
 * specification per chart, compiled to Vega and drawn to SVG with the
 * headless renderer (no browser, no canvas). {@link renderReportSvg} stacks
 * the charts in one standalone SVG; {@link renderReportHtml} wraps them with
 * the summary and the round table in a self-contained HTML page (inline SVG
 * and CSS, no scripts, no external URLs).
 *
 * Charts, top to bottom, each a named group (`class="… chart_NAME"` on its
 * `<g>` in the SVG) so tests and tools can find it:
 *
 * - `dirty_pages`: dirty pages per round (bars);
 * - `bytes`: page bytes against bytes on the wire per round (grouped bars);
 * - `rates`: send, wire and dirty rate per live round (lines with points);
 * - `codec_mix`: share of the pages sent by each codec per round (stacked bars);
 * - `time`: total time, live rounds, downtime and verification (bars).
 *
 * @module
 */

import * as vega from "vega";
import * as vl from "vega-lite";
import type { TopLevelSpec } from "vega-lite";
import { formatBytes, formatDuration, formatRate } from "../engine/format.ts";
import { type MigrationReport, migrationStatus } from "../engine/report.ts";

/** A report's status in words, for titles, cards and badges. */
const STATUS_WORDS = {
  verified: "verified",
  unchecked: "completed, not checked",
  aborted: "aborted",
  failed: "NOT verified",
} as const;

const BADGE_CLASS = {
  verified: "ok",
  unchecked: "unchecked",
  aborted: "bad",
  failed: "bad",
} as const;

/** Names of the charts, in the order they are stacked. */
export const CHART_NAMES: readonly string[] = [
  "dirty_pages",
  "bytes",
  "rates",
  "codec_mix",
  "time",
];

const WIDTH = 640;
const HEIGHT = 170;
const FONT = "Helvetica, Arial, 'DejaVu Sans', sans-serif";
const PHASE_COLORS = ["#4c78a8", "#e45756"];
const BYTES_COLORS = ["#9ecae9", "#4c78a8"];
const RATE_COLORS = ["#4c78a8", "#72b7b2", "#e45756"];
const TIME_COLORS = ["#bab0ac", "#4c78a8", "#e45756", "#54a24b"];
/** A linear axis turns logarithmic when its largest bar is this many times its smallest. */
const LOG_RATIO = 20;

const SIZE_UNITS = [
  ["B", 1],
  ["KiB", 2 ** 10],
  ["MiB", 2 ** 20],
  ["GiB", 2 ** 30],
  ["TiB", 2 ** 40],
] as const;

function sizeUnit(max: number): { name: string; div: number } {
  let best: { name: string; div: number } = { name: "B", div: 1 };
  for (const [name, div] of SIZE_UNITS) {
    if (max >= div) best = { name, div };
  }
  return best;
}

function rateUnit(maxBytesPerSecond: number): { name: string; div: number } {
  const bits = maxBytesPerSecond * 8;
  if (bits >= 1e9) return { name: "Gbit/s", div: 1e9 / 8 };
  if (bits >= 1e6) return { name: "Mbit/s", div: 1e6 / 8 };
  if (bits >= 1e3) return { name: "kbit/s", div: 1e3 / 8 };
  return { name: "bit/s", div: 1 / 8 };
}

function wantsLog(values: readonly number[]): boolean {
  const positive = values.filter((v) => v > 0);
  if (positive.length < 2 || positive.length !== values.length) return false;
  return Math.max(...positive) / Math.min(...positive) >= LOG_RATIO;
}

function roundLabel(r: { round: number; final: boolean }): string {
  return r.final ? `${r.round} (stop)` : String(r.round);
}

function oneDecimal(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

/**
 * The Vega-Lite specification of the stacked charts of a report: one
 * `vconcat` of named unit and layer specs, ready for `vl.compile`. Exported
 * for tools that want to restyle or embed the charts.
 *
 * @example
 * ```ts ignore
 * const spec = reportChartSpec(report);
 * console.log(spec.vconcat.length); // 5
 * ```
 */
export function reportChartSpec(
  report: MigrationReport,
): TopLevelSpec & { vconcat: unknown[] } {
  const rounds = report.rounds;
  const labels = rounds.map(roundLabel);
  const xRound = {
    field: "label",
    type: "ordinal" as const,
    sort: labels,
    title: "round",
    axis: { labelAngle: 0 },
  };

  // Dirty pages.
  const dirty = rounds.map((r) => ({
    label: roundLabel(r),
    pages: r.dirtyPages,
    phase: r.final ? "stop-and-copy (VM paused)" : "live",
  }));
  const dirtyLog = wantsLog(dirty.map((d) => d.pages));
  const dirtyY = {
    field: "pages",
    type: "quantitative" as const,
    title: dirtyLog ? "dirty pages (count, log scale)" : "dirty pages (count)",
    scale: dirtyLog ? { type: "log" as const } : {},
    axis: { format: dirtyLog ? "~s" : ",d", tickCount: 5 },
  };
  const dirtyChart = {
    name: "chart_dirty_pages",
    title: {
      text: "Dirty pages per round",
      subtitle:
        `pages found dirty at the sync that started the round (round 0: all ${
          (report.memoryBytes / report.pageSize).toLocaleString("en-US")
        } pages of ${report.pageSize} B)`,
    },
    width: WIDTH,
    height: HEIGHT,
    data: { values: dirty },
    encoding: { x: xRound, y: dirtyY },
    layer: [
      {
        mark: { type: "bar", tooltip: true },
        encoding: {
          color: {
            field: "phase",
            type: "nominal",
            title: null,
            scale: {
              domain: ["live", "stop-and-copy (VM paused)"],
              range: PHASE_COLORS,
            },
            legend: { orient: "top", direction: "horizontal" },
          },
        },
      },
      {
        mark: { type: "text", dy: -6, fontSize: 10, color: "#333" },
        encoding: { text: { field: "pages", format: "," } },
      },
    ],
  };

  // Raw bytes against wire bytes.
  const bUnit = sizeUnit(
    Math.max(0, ...rounds.map((r) => Math.max(r.rawBytes, r.wireBytes))),
  );
  const bytes = rounds.flatMap((r) => [
    {
      label: roundLabel(r),
      kind: "page bytes (raw)",
      value: r.rawBytes / bUnit.div,
      text: oneDecimal(r.rawBytes / bUnit.div),
    },
    {
      label: roundLabel(r),
      kind: "on the wire",
      value: r.wireBytes / bUnit.div,
      text: oneDecimal(r.wireBytes / bUnit.div),
    },
  ]);
  const bytesLog = wantsLog(bytes.map((b) => b.value));
  const bytesChart = {
    name: "chart_bytes",
    title: {
      text: "Bytes per round: raw pages against the wire",
      subtitle: `total ${formatBytes(report.rawBytes)} raw, ${
        formatBytes(report.wireBytes)
      } on the wire (${report.compressionRatio.toFixed(2)}x)`,
    },
    width: WIDTH,
    height: HEIGHT,
    data: { values: bytes },
    encoding: {
      x: xRound,
      xOffset: {
        field: "kind",
        type: "nominal",
        sort: ["page bytes (raw)", "on the wire"],
      },
      y: {
        field: "value",
        type: "quantitative",
        title: `${bUnit.name}${bytesLog ? " (log scale)" : ""}`,
        scale: bytesLog ? { type: "log" } : {},
        axis: { format: "~s", tickCount: 5 },
      },
    },
    layer: [
      {
        mark: { type: "bar", tooltip: true },
        encoding: {
          color: {
            field: "kind",
            type: "nominal",
            title: null,
            scale: {
              domain: ["page bytes (raw)", "on the wire"],
              range: BYTES_COLORS,
            },
            legend: { orient: "top", direction: "horizontal" },
          },
        },
      },
      {
        mark: { type: "text", dy: -6, fontSize: 9, color: "#333" },
        encoding: { text: { field: "text" } },
      },
    ],
  };

  // Rates of the live rounds (the stop-and-copy round has no race to show).
  const live = rounds.filter((r) => !r.final);
  const rUnit = rateUnit(
    Math.max(
      0,
      ...live.map((r) => Math.max(r.sendRate, r.wireRate, r.dirtyRate)),
    ),
  );
  const rateSeries = [
    "send rate (page bytes)",
    "wire rate",
    "dirty rate (guest)",
  ];
  const rates = live.flatMap((r) => [
    { label: roundLabel(r), series: rateSeries[0], value: r.sendRate },
    { label: roundLabel(r), series: rateSeries[1], value: r.wireRate },
    { label: roundLabel(r), series: rateSeries[2], value: r.dirtyRate },
  ]).map((d) => ({ ...d, value: d.value / rUnit.div }));
  const ratesChart = {
    name: "chart_rates",
    title: {
      text: "Send rate against dirty rate per live round",
      subtitle: report.bandwidth === null
        ? "unpaced link; pre-copy converges while the send rate stays above the dirty rate"
        : `link paced at ${
          formatRate(report.bandwidth)
        }; pre-copy converges while the send rate stays above the dirty rate`,
    },
    width: WIDTH,
    height: HEIGHT,
    data: { values: rates },
    layer: [
      { mark: { type: "line", strokeWidth: 2, tooltip: true } },
      { mark: { type: "point", filled: true, size: 40, tooltip: true } },
    ],
    encoding: {
      x: { ...xRound, sort: live.map(roundLabel) },
      y: {
        field: "value",
        type: "quantitative",
        title: rUnit.name,
        axis: { format: "~s", tickCount: 5 },
      },
      color: {
        field: "series",
        type: "nominal",
        title: null,
        sort: rateSeries,
        scale: { domain: rateSeries, range: RATE_COLORS },
        legend: {
          orient: "top",
          direction: "horizontal",
          symbolType: "stroke",
          symbolStrokeWidth: 2,
        },
      },
      strokeDash: {
        field: "series",
        type: "nominal",
        sort: rateSeries,
        scale: { domain: rateSeries, range: [[1, 0], [4, 3], [1, 0]] },
      },
    },
  };

  // Codec mix.
  const codecNames = [
    ...new Set(rounds.flatMap((r) => Object.keys(r.codecMix))),
  ];
  const mix = rounds.flatMap((r) =>
    Object.entries(r.codecMix)
      .filter(([, pages]) => pages > 0)
      .map(([codec, pages]) => ({ label: roundLabel(r), codec, pages }))
  );
  const mixChart = {
    name: "chart_codec_mix",
    title: {
      text: "Codec mix per round",
      subtitle: "share of the pages sent in the round that each codec encoded",
    },
    width: WIDTH,
    height: HEIGHT,
    data: { values: mix },
    mark: { type: "bar", tooltip: true },
    encoding: {
      x: xRound,
      y: {
        field: "pages",
        type: "quantitative",
        stack: "normalize",
        title: "share of pages sent (%)",
        axis: { format: ".0%", tickCount: 5 },
      },
      color: {
        field: "codec",
        type: "nominal",
        title: null,
        sort: codecNames,
        scale: { domain: codecNames, scheme: "tableau10" },
        legend: { orient: "top", direction: "horizontal" },
      },
      order: { field: "codec", sort: "ascending" },
    },
  };

  // Time.
  const liveMs = live.reduce((s, r) => s + r.durationMs, 0);
  const tUnit = report.totalTimeMs >= 2000
    ? { name: "s", div: 1000 }
    : { name: "ms", div: 1 };
  const times = [
    ["total (handshake to verdict)", report.totalTimeMs],
    ["live rounds", liveMs],
    ["downtime (VM paused)", report.downtimeMs],
    ["verify", report.verifyMs],
  ].map(([what, ms]) => ({
    what: what as string,
    value: (ms as number) / tUnit.div,
    text: `${what}: ${formatDuration(ms as number)}`,
  }));
  const downPct = report.totalTimeMs > 0
    ? (100 * report.downtimeMs / report.totalTimeMs).toFixed(1)
    : "0";
  const timeChart = {
    name: "chart_time",
    title: {
      text: "Time",
      subtitle: `downtime ${formatDuration(report.downtimeMs)} of ${
        formatDuration(report.totalTimeMs)
      } total (${downPct}%)`,
    },
    width: WIDTH,
    height: 4 * 24,
    data: { values: times },
    encoding: {
      y: {
        field: "what",
        type: "nominal",
        sort: times.map((t) => t.what),
        title: null,
        axis: { labels: false, ticks: false, domain: false },
      },
      x: {
        field: "value",
        type: "quantitative",
        title: `time (${tUnit.name})`,
        axis: { format: "~s", tickCount: 8 },
        scale: {
          domainMax: Math.max(1e-9, ...times.map((t) => t.value)) * 1.45,
        },
      },
    },
    layer: [
      {
        mark: { type: "bar", tooltip: true, height: { band: 0.75 } },
        encoding: {
          color: {
            field: "what",
            type: "nominal",
            scale: { domain: times.map((t) => t.what), range: TIME_COLORS },
            legend: null,
          },
        },
      },
      {
        mark: {
          type: "text",
          align: "left",
          dx: 5,
          fontSize: 11,
          color: "#222",
        },
        encoding: { text: { field: "text" } },
      },
    ],
  };

  const status = STATUS_WORDS[migrationStatus(report)];
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    description: `Migration report of ${report.vm}`,
    title: {
      text: `hakobu migration: ${report.vm}`,
      subtitle: `policy ${report.policy}, ${rounds.length} rounds, ${status}`,
      fontSize: 16,
      anchor: "start",
      offset: 20,
    },
    background: "white",
    padding: 16,
    spacing: 36,
    config: {
      font: FONT,
      title: {
        anchor: "start",
        frame: "group",
        fontSize: 14,
        subtitleColor: "#555",
      },
      axis: { labelFontSize: 11, titleFontSize: 11, titleColor: "#333" },
      axisY: { minExtent: 48 },
      legend: { labelFontSize: 11, symbolType: "square", labelLimit: 400 },
      view: { stroke: "#ddd" },
    },
    resolve: {
      scale: { color: "independent", strokeDash: "independent" },
      legend: { color: "independent", strokeDash: "independent" },
    },
    vconcat: [dirtyChart, bytesChart, ratesChart, mixChart, timeChart],
  } as TopLevelSpec & { vconcat: unknown[] };
}

/**
 * Renders the charts of a report as one standalone SVG document (with
 * `xmlns`, a white background, titles and axis titles with units).
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("report.svg", await renderReportSvg(report));
 * ```
 */
export async function renderReportSvg(
  report: MigrationReport,
): Promise<string> {
  const compiled = vl.compile(reportChartSpec(report)).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    const svg = await view.toSVG();
    return `<?xml version="1.0" encoding="UTF-8"?>\n${svg}\n`;
  } finally {
    view.finalize();
  }
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function codecMixText(mix: Readonly<Record<string, number>>, sent: number) {
  return Object.entries(mix)
    .map(([k, v]) => `${k} ${((v / Math.max(1, sent)) * 100).toFixed(0)}%`)
    .join(" ");
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
 * ```ts ignore
 * await Deno.writeTextFile("report.html", await renderReportHtml(report));
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
      r.final ? `${r.round} (stop)` : String(r.round),
      r.dirtyPages.toLocaleString("en-US"),
      r.pagesSent.toLocaleString("en-US"),
      formatBytes(r.rawBytes),
      formatBytes(r.wireBytes),
      r.wireBytes > 0 ? `${(r.rawBytes / r.wireBytes).toFixed(1)}x` : "-",
      codecMixText(r.codecMix, r.pagesSent) || "-",
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
