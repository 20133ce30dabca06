import assert from "node:assert/strict";
import { policy, when } from "../mod.ts";
import { PolicyError } from "../dsl/errors.ts";
import { XenMigrateError } from "../engine/xen/migrate_domain.ts";
import { xenDirtyRate, xenMigrate } from "./repl_xen.ts";

Deno.test("xenMigrate compiles the policy first: a broken one fails before any xl runs", async () => {
  // no switchover condition: does not compile; xl is a path that cannot run
  const broken = policy("p");
  await assert.rejects(
    xenMigrate("vm1", broken, { xl: "/nonexistent/xl" }),
    (e: unknown) => e instanceof PolicyError,
  );
  const ok = policy("p").switchover(when.rounds(3));
  await assert.rejects(
    xenMigrate("vm1", ok, { xl: "/nonexistent/xl" }),
    (e: unknown) =>
      e instanceof XenMigrateError && e.resumed &&
      /Cannot migrate domain "vm1": Cannot run "\/nonexistent\/xl domid vm1"/
        .test(
          e.message,
        ),
  );
});

Deno.test("xenDirtyRate rejects a bad interval before touching Xen", async () => {
  await assert.rejects(xenDirtyRate(7, "soon"), /Cannot parse interval "soon"/);
});
