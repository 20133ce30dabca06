import assert from "node:assert/strict";
import { procStatTimes } from "./proc_stat.ts";

Deno.test("procStatTimes: a name with spaces and parentheses, utime + stime, the children's apart", () => {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
  const line =
    "4242 (CPU 0/TCG) R 1 1 1 0 -1 4194560 10 0 0 0 123 45 0 0 20 0 1 0";
  assert.deepEqual(procStatTimes(line), {
    comm: "CPU 0/TCG",
    ticks: 168,
    childTicks: 0,
  });
  assert.equal(
    procStatTimes("7 (a (b) c) S 1 1 1 0 -1 0 0 0 0 0 5 6 0 0").ticks,
    11,
  );
  assert.equal(
    procStatTimes("7 (sh) S 1 1 1 0 -1 0 0 0 0 0 5 6 30 4").childTicks,
    34,
  );
  assert.throws(
    () => procStatTimes("garbage"),
    /Cannot read a \/proc stat line/,
  );
});
