/**
 * `hakobu report`: reads the JSON a migration wrote with `--report`, checks
 * its shape, and writes the HTML and SVG reports with charts, or prints the
 * round table and summary.
 *
 * @module
 */

import { HakobuError } from "../../engine/errors.ts";
import type { MigrationReport } from "../../engine/report.ts";
import {
  formatRoundTable,
  formatSummary,
  renderReportHtml,
  renderReportSvg,
} from "../../report/mod.ts";
import { writeText } from "./_write_text.ts";

/** Options of `hakobu report`. */
export interface ReportCommandOptions {
  /** Write the HTML report (summary, round table, charts) here. */
  html?: string;
  /** Write the charts as one standalone SVG here. */
  svg?: string;
}

/** A file is not a {@link MigrationReport}: names the file and the field. */
export class ReportFileError extends HakobuError {
  /** The file that was read. */
  readonly file: string;
  /** The path of the field that is missing or wrong (`rounds[2].wireBytes`), or `""` for the whole file. */
  declare readonly field: string;
  /**
   * @param file The file that was read.
   * @param field The field that is missing or wrong.
   * @param message What went wrong.
   */
  constructor(
    file: string,
    field: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, { ...options, field });
    this.file = file;
  }
}

type Kind = "number" | "string" | "boolean" | "number|null" | "counts";

const REPORT_FIELDS: readonly [string, Kind][] = [
  ["verified", "boolean"],
  ["aborted", "boolean"],
  ["outcome", "string"],
  ["policy", "string"],
  ["vm", "string"],
  ["memoryBytes", "number"],
  ["pageSize", "number"],
  ["bandwidth", "number|null"],
  ["startedAt", "string"],
  ["totalTimeMs", "number"],
  ["downtimeMs", "number"],
  ["verifyMs", "number"],
  ["wireBytes", "number"],
  ["rawBytes", "number"],
  ["compressionRatio", "number"],
  ["pagesSent", "number"],
  ["sourceCpuSeconds", "number"],
  ["sourceCpuSecondsPerGiB", "number"],
  ["digest", "string"],
];

const ROUND_FIELDS: readonly [string, Kind][] = [
  ["round", "number"],
  ["final", "boolean"],
  ["dirtyPages", "number"],
  ["pagesSent", "number"],
  ["rawBytes", "number"],
  ["wireBytes", "number"],
  ["codecMix", "counts"],
  ["durationMs", "number"],
  ["dirtyRate", "number"],
  ["sendRate", "number"],
  ["wireRate", "number"],
  ["remainingPages", "number"],
  ["decision", "string"],
  ["reason", "string"],
];

const CHANNEL_FIELDS: readonly [string, Kind][] = [
  ["pages", "number"],
  ["wireBytes", "number"],
  ["codecMix", "counts"],
];

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object"
    ? "an object"
    : `${typeof v} ${JSON.stringify(v)}`;
}

function fits(v: unknown, kind: Kind): boolean {
  switch (kind) {
    case "number":
      return typeof v === "number" && Number.isFinite(v);
    case "number|null":
      return v === null || (typeof v === "number" && Number.isFinite(v));
    case "counts":
      return typeof v === "object" && v !== null && !Array.isArray(v) &&
        Object.values(v).every((n) => typeof n === "number");
    case "string":
      return typeof v === "string";
    case "boolean":
      return typeof v === "boolean";
  }
}

function expected(kind: Kind): string {
  return kind === "counts"
    ? "an object of page counts"
    : kind === "number|null"
    ? "a number or null"
    : `a ${kind}`;
}

function check(
  file: string,
  obj: Record<string, unknown>,
  fields: readonly [string, Kind][],
  prefix: string,
): void {
  for (const [name, kind] of fields) {
    const path = `${prefix}${name}`;
    if (!(name in obj)) {
      throw new ReportFileError(
        file,
        path,
        `Cannot read report "${file}": missing field "${path}" (is it the JSON of "hakobu migrate --report"?)`,
      );
    }
    if (!fits(obj[name], kind)) {
      throw new ReportFileError(
        file,
        path,
        `Cannot read report "${file}": field "${path}" is ${
          describe(obj[name])
        }, expected ${expected(kind)}`,
      );
    }
  }
}

const VERIFICATIONS: readonly string[] = [
  "memory-digest",
  "stream-digest",
  "none",
];

/**
 * Checks `verification` against `verified`. Reports written before the
 * field existed get it from their digest: a native migration's report has
 * the source's memory digest; one without a digest (QEMU's own transport)
 * compared nothing, so its `verified` is reset to false.
 */
function readVerification(file: string, obj: Record<string, unknown>): void {
  if (!("verification" in obj)) {
    obj.verification = obj.digest ? "memory-digest" : "none";
    if (obj.verification === "none") obj.verified = false;
    return;
  }
  if (!VERIFICATIONS.includes(obj.verification as string)) {
    throw new ReportFileError(
      file,
      "verification",
      `Cannot read report "${file}": field "verification" is ${
        describe(obj.verification)
      }, expected one of ${VERIFICATIONS.map((v) => `"${v}"`).join(", ")}`,
    );
  }
  if (obj.verified === true && obj.verification === "none") {
    throw new ReportFileError(
      file,
      "verified",
      `Cannot read report "${file}": field "verified" is true but "verification" is "none": nothing was compared`,
    );
  }
}

/**
 * Parses and checks the text of a report file: every field of
 * {@link MigrationReport} and of each round must be there with its type.
 * Throws a {@link ReportFileError} naming the file and the field otherwise.
 *
 * @example
 * ```ts ignore
 * const report = parseReport(await Deno.readTextFile("out.json"), "out.json");
 * ```
 */
export function parseReport(text: string, file: string): MigrationReport {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ReportFileError(
      file,
      "",
      `Cannot read report "${file}": not JSON: ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ReportFileError(
      file,
      "",
      `Cannot read report "${file}": expected a JSON object, got ${
        describe(data)
      }`,
    );
  }
  const obj = data as Record<string, unknown>;
  check(file, obj, REPORT_FIELDS, "");
  readVerification(file, obj);
  if (!("rounds" in obj)) {
    throw new ReportFileError(
      file,
      "rounds",
      `Cannot read report "${file}": missing field "rounds" (is it the JSON of "hakobu migrate --report"?)`,
    );
  }
  if (!Array.isArray(obj.rounds)) {
    throw new ReportFileError(
      file,
      "rounds",
      `Cannot read report "${file}": field "rounds" is ${
        describe(obj.rounds)
      }, expected an array`,
    );
  }
  obj.rounds.forEach((r: unknown, i: number) => {
    if (typeof r !== "object" || r === null || Array.isArray(r)) {
      throw new ReportFileError(
        file,
        `rounds[${i}]`,
        `Cannot read report "${file}": field "rounds[${i}]" is ${
          describe(r)
        }, expected an object`,
      );
    }
    check(file, r as Record<string, unknown>, ROUND_FIELDS, `rounds[${i}].`);
    // per-channel shares: optional (reports from before channels have none)
    const channels = (r as Record<string, unknown>).channels;
    if (channels === undefined) return;
    if (!Array.isArray(channels)) {
      throw new ReportFileError(
        file,
        `rounds[${i}].channels`,
        `Cannot read report "${file}": field "rounds[${i}].channels" is ${
          describe(channels)
        }, expected an array`,
      );
    }
    channels.forEach((c: unknown, k: number) => {
      const path = `rounds[${i}].channels[${k}]`;
      if (typeof c !== "object" || c === null || Array.isArray(c)) {
        throw new ReportFileError(
          file,
          path,
          `Cannot read report "${file}": field "${path}" is ${
            describe(c)
          }, expected an object`,
        );
      }
      check(file, c as Record<string, unknown>, CHANNEL_FIELDS, `${path}.`);
    });
  });
  return obj as unknown as MigrationReport;
}

/**
 * Reads and checks a report file.
 *
 * @example
 * ```ts ignore
 * const report = await readReport("out/example.json");
 * ```
 */
export async function readReport(file: string): Promise<MigrationReport> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new ReportFileError(
      file,
      "",
      `Cannot read report "${file}": ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
  }
  return parseReport(text, file);
}

/**
 * Writes the HTML report of a migration to `file`, creating its folder.
 * (vega is loaded by the first render, so commands that draw no chart start
 * without it.)
 *
 * @example
 * ```ts ignore
 * await writeHtmlReport(report, "out/report.html");
 * ```
 */
export async function writeHtmlReport(
  report: MigrationReport,
  file: string,
): Promise<void> {
  await writeText(file, await renderReportHtml(report));
}

/**
 * Writes the charts of a migration as one standalone SVG to `file`.
 *
 * @example
 * ```ts ignore
 * await writeSvgReport(report, "out/report.svg");
 * ```
 */
export async function writeSvgReport(
  report: MigrationReport,
  file: string,
): Promise<void> {
  await writeText(file, await renderReportSvg(report));
}

/**
 * Runs `hakobu report FILE`: with `--html`/`--svg` writes those files and
 * prints where; with neither prints the round table and the summary.
 * Returns the exit code.
 *
 * @example
 * ```ts ignore
 * await reportCommand("out/example.json", { html: "out/example.html" });
 * ```
 */
export async function reportCommand(
  file: string,
  opts: ReportCommandOptions = {},
): Promise<number> {
  const report = await readReport(file);
  if (opts.html === undefined && opts.svg === undefined) {
    console.log(formatRoundTable(report));
    console.log(formatSummary(report));
    return 0;
  }
  if (opts.svg !== undefined) {
    await writeSvgReport(report, opts.svg);
    console.log(`SVG charts written to ${opts.svg}`);
  }
  if (opts.html !== undefined) {
    await writeHtmlReport(report, opts.html);
    console.log(`HTML report written to ${opts.html}`);
  }
  return 0;
}
