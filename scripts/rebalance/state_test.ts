import assert from "node:assert/strict";
import {
  cooldowns,
  loadState,
  type MoveRecord,
  recordMoves,
  saveState,
  StateError,
} from "./state.ts";

function rec(vm: string, at: string, moved = true): MoveRecord {
  return { vm, from: "h1", to: "h2", at, moved };
}

Deno.test("loadState: a missing file is an empty history; saveState round-trips", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/state.json`;
    assert.deepEqual(await loadState(path), { moves: [] });
    const state = { moves: [rec("a", "2025-06-01T10:00:00.000Z")] };
    await saveState(path, state);
    assert.deepEqual(await loadState(path), state);
    // The write replaced the file whole and left no temporary file behind.
    await saveState(path, { moves: [] });
    assert.deepEqual(await loadState(path), { moves: [] });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "state.json",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveState replaces the file by rename: a reader holding the old file keeps reading the old content", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/state.json`;
    await saveState(path, { moves: [rec("old", "2025-06-01T10:00:00.000Z")] });
    const inode = (await Deno.stat(path)).ino;
    using reader = await Deno.open(path);
    await saveState(path, { moves: [rec("new", "2025-06-01T11:00:00.000Z")] });
    // A new inode: the old file was not truncated and rewritten in place.
    assert.notEqual((await Deno.stat(path)).ino, inode);
    const buf = new Uint8Array(4096);
    const n = (await reader.read(buf)) ?? 0;
    assert.match(new TextDecoder().decode(buf.subarray(0, n)), /"old"/);
    assert.equal((await loadState(path)).moves[0].vm, "new");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadState: a corrupt or malformed file is an error that names the file, the field and the fix", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/state.json`;
    const cases: [string, string, RegExp][] = [
      ["{not json", "file", /Cannot parse rebalance state ".*state\.json": /],
      ["[]", "", /expected an object/],
      [
        '{"version": 2, "moves": []}',
        "version",
        /version "2": this hakobu reads version 1/,
      ],
      ['{"version": 1}', "moves", /"moves" must be an array/],
      [
        '{"version": 1, "moves": [{"vm": "a", "from": "h1", "to": "h2", "at": "2025-06-01T10:00:00Z"}]}',
        "moves[0].moved",
        /Invalid moves\[0\]\.moved "undefined": expected true or false/,
      ],
    ];
    for (const [text, field, message] of cases) {
      await Deno.writeTextFile(path, text);
      await assert.rejects(loadState(path), (e: unknown) => {
        assert.ok(e instanceof StateError, String(e));
        assert.equal(e.field, field, text);
        assert.match(e.message, message);
        assert.match(e.message, /delete it to forget the move history/);
        return true;
      });
    }
    // Unreadable: a folder where the file should be.
    await Deno.remove(path);
    await Deno.mkdir(path);
    await assert.rejects(
      loadState(path),
      (e: unknown) => e instanceof StateError && e.field === "file",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cooldowns: the last move that happened counts, for cooldownMs; failed attempts do not", () => {
  const state = {
    moves: [
      rec("a", "2025-06-01T09:00:00Z"),
      rec("a", "2025-06-01T09:50:00Z"), // the later move wins
      rec("b", "2025-06-01T09:10:00Z"), // ended 50 min ago
      rec("c", "2025-06-01T09:55:00Z", false),
    ],
  };
  const now = new Date("2025-06-01T10:00:00Z");
  const held = cooldowns(state, { now, cooldownMs: 30 * 60_000 });
  assert.deepEqual([...held.keys()], ["a"]);
  assert.equal(held.get("a")!.until.toISOString(), "2025-06-01T10:20:00.000Z");
  assert.equal(held.get("a")!.move.at, "2025-06-01T09:50:00Z");
  // The default is 30 minutes; 0 disables the cooldown.
  assert.deepEqual([...cooldowns(state, { now }).keys()], ["a"]);
  assert.equal(cooldowns(state, { now, cooldownMs: 0 }).size, 0);
  assert.deepEqual(
    [...cooldowns(state, { now, cooldownMs: 3600_000 }).keys()].sort(),
    ["a", "b"],
  );
});

Deno.test("recordMoves appends and drops records older than keepMs", () => {
  const now = new Date("2025-06-01T10:00:00Z");
  const s = recordMoves(
    {
      moves: [
        rec("old", "2025-06-01T07:00:00Z"),
        rec("kept", "2025-06-01T09:00:00Z"),
      ],
    },
    [rec("new", now.toISOString())],
    { now, keepMs: 2 * 3600_000 },
  );
  assert.deepEqual(s.moves.map((m) => m.vm), ["kept", "new"]);
});
