import assert from "node:assert/strict";
import { InvalidArgumentError } from "@commander-js/extra-typings";
import {
  address,
  bandwidth,
  codecChain,
  codecChains,
  duration,
  endpoint,
  integer,
  interval,
  nameList,
  percent,
  positiveNumber,
  size,
} from "./options.ts";

/** Asserts that `parse(text)` fails as commander expects, with `message`. */
function refuses<T>(parse: (t: string) => T, text: string, message: string) {
  assert.throws(
    () => parse(text),
    (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, `${text}: ${e}`);
      assert.equal(e.message, message);
      return true;
    },
  );
}

Deno.test("integer takes decimal digits within its bounds and says which bounds it wanted", () => {
  const channels = integer({ min: 1, max: 64 });
  assert.equal(channels("1"), 1);
  assert.equal(channels(" 64 "), 64);
  for (const bad of ["0", "65", "x", "", "1.5", "1e1", "0x10", "-1"]) {
    refuses(
      channels,
      bad,
      `expected a whole number from 1 to 64, got "${bad}"`,
    );
  }
  assert.equal(integer()("0"), 0);
  refuses(integer(), "-1", `expected a whole number ≥ 0, got "-1"`);
  refuses(
    integer(),
    "99999999999999999999",
    `expected a whole number ≥ 0, got "99999999999999999999"`,
  );
});

Deno.test("positiveNumber and percent refuse zero, signs they cannot use and words", () => {
  const rate = positiveNumber("bytes per second");
  assert.equal(rate("1.5e8"), 1.5e8);
  for (const bad of ["0", "-5", "fast", "", "Infinity"]) {
    refuses(
      rate,
      bad,
      `expected bytes per second, a number above 0, got "${bad}"`,
    );
  }
  assert.equal(percent("85"), 85);
  assert.equal(percent("100%"), 100);
  for (const bad of ["0", "100.5", "", "%", "high"]) {
    refuses(
      percent,
      bad,
      `expected a percentage above 0 and at most 100, e.g. 85, got "${bad}"`,
    );
  }
});

Deno.test("units parse as the DSL parses them, its message the reason", () => {
  assert.equal(size("64MiB"), 64 * 2 ** 20);
  assert.throws(
    () => size("10 GB"),
    /^InvalidArgumentError: Cannot parse size "10 GB"/,
  );
  assert.equal(bandwidth("1Gbit"), 125e6);
  assert.equal(bandwidth("unlimited"), null);
  assert.throws(() => bandwidth("0Gbit"), /a rate must be positive/);
  assert.equal(duration("2m"), 120_000);
  assert.throws(() => duration("soon"), /Cannot parse duration "soon"/);
  assert.equal(interval("500ms"), 500);
  assert.equal(interval("2"), 2000);
  assert.throws(() => interval("0s"), /Cannot parse interval "0s"/);
});

Deno.test("address and endpoint: HOST:PORT, bracketed IPv6, unix:PATH", () => {
  assert.deepEqual(address("[::1]:7700"), { hostname: "::1", port: 7700 });
  refuses(
    address,
    "h:70000",
    `Cannot parse address "h:70000": expected HOST:PORT, e.g. 127.0.0.1:7700`,
  );
  assert.deepEqual(endpoint("unix:/run/x.sock"), {
    transport: "unix",
    path: "/run/x.sock",
  });
  assert.deepEqual(endpoint("10.0.0.2:4444"), {
    transport: "tcp",
    hostname: "10.0.0.2",
    port: 4444,
  });
  refuses(endpoint, "unix:", `expected unix:PATH with a path, got "unix:"`);
  refuses(
    endpoint,
    "nowhere",
    `Cannot parse address "nowhere": expected HOST:PORT, e.g. 127.0.0.1:7700`,
  );
});

Deno.test("nameList and the codec lists refuse empty and unknown names", () => {
  const any = nameList();
  assert.deepEqual(any("a, b"), ["a", "b"]);
  refuses(any, "a,,b", `expected names separated by commas, got "a,,b"`);
  const rows = nameList({ known: ["idle", "zero"], what: "row" });
  refuses(rows, "idle,nope", `Unknown row "nope": expected one of idle, zero`);

  assert.deepEqual(codecChain()("zero,lz4"), ["zero", "lz4"]);
  assert.deepEqual(codecChain("+")("zero+zstd"), ["zero", "zstd"]);
  refuses(
    codecChain(),
    ",",
    `expected codec names separated by ",", e.g. zero,lz4, got ","`,
  );
  assert.throws(
    () => codecChain()("zero,zsdt"),
    /^InvalidArgumentError: Unknown codec "zsdt": known codecs are "raw"/,
  );
  assert.deepEqual(codecChains(";", ",")("zero,lz4;;raw;"), [
    ["zero", "lz4"],
    ["raw"],
  ]);
  refuses(
    codecChains(";", ","),
    ";",
    `expected codec chains separated by ";", got ";"`,
  );
  assert.throws(
    () => codecChains(",", "+")("lz4,zero+nope"),
    /Unknown codec "nope"/,
  );
});
