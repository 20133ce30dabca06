import assert from "node:assert/strict";
import { DOMParser, type Element } from "@xmldom/xmldom";
import { CHART_NAMES } from "./spec.ts";
import { renderReportSvg } from "./svg.ts";
import { sampleReport } from "../_sample_report.ts";

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
  const report = sampleReport(4);
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
  const svg = await renderReportSvg(sampleReport(4));
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
      t === "downtime (VM paused): 700 ms"
    ),
  );
});

Deno.test("renderReportSvg: a dirty set spanning decades gets a log axis", async () => {
  const report = sampleReport(3);
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
  const report = sampleReport(1, {
    rounds: [],
    verified: false,
    aborted: true,
    outcome: "aborted by policy",
  });
  const root = parseXml(await renderReportSvg(report));
  assert.equal(withRole(root, "bar").length, 4, "only the time bars");
});
