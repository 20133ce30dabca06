import assert from "node:assert/strict";
import { PolicyError } from "./errors.ts";
import {
  formatBytes,
  formatDuration,
  formatRate,
  Gbit,
  GBps,
  GiB,
  kbit,
  KBps,
  KiB,
  Mbit,
  MBps,
  MiB,
  minutes,
  ms,
  parseBandwidth,
  parseDuration,
  parseSize,
  seconds,
  TiB,
} from "./units.ts";

Deno.test("size units are binary", () => {
  assert.equal(KiB(4), 4096);
  assert.equal(MiB(1), 1048576);
  assert.equal(GiB(1), 1073741824);
  assert.equal(TiB(1), 1099511627776);
  assert.equal(MiB(1.5), 1572864);
});

Deno.test("rate units: bits are decimal and divided by 8", () => {
  assert.equal(Gbit(1), 125_000_000);
  assert.equal(Mbit(100), 12_500_000);
  assert.equal(kbit(8), 1000);
  assert.equal(KBps(1), 1000);
  assert.equal(MBps(125), Gbit(1));
  assert.equal(GBps(1), 1e9);
});

Deno.test("durations are in milliseconds", () => {
  assert.equal(ms(300), 300);
  assert.equal(seconds(5), 5000);
  assert.equal(minutes(10), 600_000);
});

Deno.test("parseSize reads binary units and plain bytes", () => {
  assert.equal(parseSize("1GiB"), GiB(1));
  assert.equal(parseSize("512MiB"), MiB(512));
  assert.equal(parseSize("4096"), 4096);
  assert.equal(parseSize("1.5GiB"), GiB(1.5));
  assert.equal(parseSize("64 KiB"), KiB(64));
  assert.equal(parseSize("2TiB"), TiB(2));
});

Deno.test("parseSize rejects decimal units, signs and junk, naming the string and the form", () => {
  for (
    const bad of ["10 GB", "-1GiB", "GiB", "", "1.5.2MiB", "1gib", "12 parsecs"]
  ) {
    assert.throws(() => parseSize(bad), PolicyError, bad);
  }
  assert.throws(() => parseSize("10 GB"), (e: unknown) => {
    assert.ok(e instanceof PolicyError);
    assert.equal(e.field, "size");
    assert.match(
      e.message,
      /^Cannot parse size "10 GB": expected a number followed by KiB, MiB, GiB or TiB/,
    );
    return true;
  });
});

Deno.test("parseBandwidth reads bit and byte rates, and unlimited", () => {
  assert.equal(parseBandwidth("1Gbit"), Gbit(1));
  assert.equal(parseBandwidth("100Mbit"), Mbit(100));
  assert.equal(parseBandwidth("100Mbit/s"), Mbit(100));
  assert.equal(parseBandwidth("125MB/s"), MBps(125));
  assert.equal(parseBandwidth("64MiB/s"), MiB(64));
  assert.equal(parseBandwidth("2.5 Gbit"), Gbit(2.5));
  assert.equal(parseBandwidth("unlimited"), null);
});

Deno.test("parseBandwidth rejects unknown units and zero", () => {
  assert.throws(() => parseBandwidth("10 Gbps"), (e: unknown) => {
    assert.ok(e instanceof PolicyError);
    assert.equal(e.field, "bandwidth");
    assert.match(
      e.message,
      /^Cannot parse bandwidth "10 Gbps": expected a number followed by bit\/s or B\/s units/,
    );
    return true;
  });
  for (const bad of ["fast", "1", "-1Gbit", "1 GiB", "Gbit"]) {
    assert.throws(() => parseBandwidth(bad), PolicyError, bad);
  }
  assert.throws(
    () => parseBandwidth("0Mbit"),
    /"0Mbit": a rate must be positive: pass "unlimited"/,
  );
});

Deno.test("parseDuration reads ms, s, m and h", () => {
  assert.equal(parseDuration("300ms"), 300);
  assert.equal(parseDuration("5s"), 5000);
  assert.equal(parseDuration("2m"), 120_000);
  assert.equal(parseDuration("2min"), 120_000);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("1h"), 3_600_000);
});

Deno.test("parseDuration rejects numbers without a unit and unknown units", () => {
  for (const bad of ["300", "5 sec", "2 days", "-5s", ""]) {
    assert.throws(() => parseDuration(bad), (e: unknown) => {
      assert.ok(e instanceof PolicyError);
      assert.equal(e.field, "duration");
      assert.ok(e.message.includes(`"${bad}"`), e.message);
      assert.match(e.message, /expected a number followed by ms, s, m or h/);
      return true;
    });
  }
});

Deno.test("formatters print sizes, rates and durations", () => {
  assert.equal(formatBytes(GiB(1)), "1.00 GiB");
  assert.equal(formatBytes(MiB(64)), "64.00 MiB");
  assert.equal(formatRate(Gbit(1)), "1.00 Gbit/s");
  assert.equal(formatDuration(300), "300 ms");
  assert.match(formatDuration(minutes(10)), /^10 min/);
});
