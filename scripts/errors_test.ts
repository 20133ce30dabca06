import assert from "node:assert/strict";
import {
  CodecError,
  HakobuError,
  MigrationError,
  WireError,
} from "../engine/errors.ts";
import { PolicyError } from "../dsl/errors.ts";
import { SimError } from "../engine/sim/errors.ts";
import { GpuError } from "../engine/gpu/device.ts";
import { QmpError } from "../engine/qemu/qmp.ts";
import { QemuMigrationError } from "../engine/qemu/policy_driver.ts";
import { QemuStreamError } from "../engine/qemu/stream/errors.ts";
import { XenStreamError } from "../engine/xen/stream/errors.ts";
import { XenMigrateError } from "../engine/xen/migrate_domain.ts";
import { FfiError } from "../ffi/_library.ts";
import { XenError } from "../ffi/xen/errors.ts";
import { InventoryError } from "./rebalance/inventory.ts";
import { StateError } from "./rebalance/state.ts";
import { ExcludeRuleError } from "./rebalance/exclude.ts";
import { ReportFileError } from "./_cli/report.ts";
import { TcgGuestFault } from "./lab/guest_fault.ts";
import { ChannelAuthError } from "../engine/transport/secure/auth_error.ts";

Deno.test("every error class is a HakobuError named after itself, with its field or offset", () => {
  const cause = new Error("underneath");
  const cases: [HakobuError, string, string | undefined, number | undefined][] =
    [
      [
        new CodecError("lz4", "m", { cause }),
        "CodecError",
        undefined,
        undefined,
      ],
      [new WireError("m", 12, { cause }), "WireError", undefined, 12],
      [
        new ChannelAuthError("m", "127.0.0.1:1", { cause }),
        "ChannelAuthError",
        undefined,
        undefined,
      ],
      [
        new MigrationError("m", { cause }),
        "MigrationError",
        undefined,
        undefined,
      ],
      [
        new PolicyError("bandwidth", "m", { cause }),
        "PolicyError",
        "bandwidth",
        undefined,
      ],
      [new SimError("m", "pfn", { cause }), "SimError", "pfn", undefined],
      [new GpuError("m", { cause }), "GpuError", undefined, undefined],
      [
        new QmpError("m", { command: "migrate" }, { cause }),
        "QmpError",
        undefined,
        undefined,
      ],
      [
        new QemuMigrationError("m", undefined, { cause }),
        "QemuMigrationError",
        undefined,
        undefined,
      ],
      [
        new QemuStreamError("m", 4100, { cause }),
        "QemuStreamError",
        undefined,
        4100,
      ],
      [new XenStreamError("m", 8, { cause }), "XenStreamError", undefined, 8],
      [
        new XenMigrateError("m", true, { cause }),
        "XenMigrateError",
        undefined,
        undefined,
      ],
      [
        new FfiError("liblz4", "m", { cause, tried: ["a.so"] }),
        "FfiError",
        undefined,
        undefined,
      ],
      [
        new XenError("libxenctrl", "xc_x", "m", 0, { cause }),
        "XenError",
        undefined,
        undefined,
      ],
      [
        new InventoryError("vms[0].host", "m", { cause }),
        "InventoryError",
        "vms[0].host",
        undefined,
      ],
      [
        new StateError("moves[0].at", "m", { cause }),
        "StateError",
        "moves[0].at",
        undefined,
      ],
      [
        new ExcludeRuleError("tags", "m", { cause }),
        "ExcludeRuleError",
        "tags",
        undefined,
      ],
      [
        new ReportFileError("r.json", "rounds", "m", { cause }),
        "ReportFileError",
        "rounds",
        undefined,
      ],
      [
        new TcgGuestFault("m", { cause }),
        "TcgGuestFault",
        undefined,
        undefined,
      ],
    ];
  for (const [e, name, field, offset] of cases) {
    assert.ok(e instanceof HakobuError, name);
    assert.ok(e instanceof Error, name);
    assert.equal(e.name, name);
    assert.equal(e.message, "m");
    assert.equal(e.field, field, name);
    assert.equal(e.offset, offset, name);
    assert.equal(e.cause, cause, name);
    assert.match(String(e), new RegExp(`^${name}: m$`));
  }
});

Deno.test("an unknown offset or field stays undefined, and no cause is made up", () => {
  const e = new WireError("m");
  assert.equal(e.offset, undefined);
  assert.equal(e.field, undefined);
  assert.ok(!("cause" in e));
});

Deno.test("subclasses keep their own instanceof lines", () => {
  const e = new QemuMigrationError("m");
  assert.ok(e instanceof MigrationError);
  assert.ok(!(e instanceof WireError));
  assert.ok(new XenError("libxenctrl", "xc_x", "m", 0) instanceof FfiError);
});
