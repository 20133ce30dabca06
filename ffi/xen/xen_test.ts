import assert from "node:assert/strict";
import { FfiError } from "../_library.ts";
import { XenError } from "./errors.ts";
import {
  decodeDomainInfo,
  DOMAININFO,
  DomInfoFlag,
  openXenctrl,
  openXenctrlLibrary,
  PRIVCMD,
  ShutdownReason,
  XENCTRL_LIBRARY,
  XENCTRL_SYMBOLS,
} from "./xenctrl.ts";
import {
  openForeignMemory,
  XENFOREIGNMEMORY_LIBRARY,
  XENFOREIGNMEMORY_SYMBOLS,
} from "./xenforeignmemory.ts";
import {
  openXenstore,
  XENSTORE_LIBRARY,
  XENSTORE_SYMBOLS,
} from "./xenstore.ts";
import {
  decodePrecopyStats,
  encodePrecopyStats,
  encodeSaveCallbacks,
  PRECOPY_POLICY_DEF,
  SAVE_CALLBACKS,
  SUSPEND_DEF,
  SWITCH_QEMU_LOGDIRTY_DEF,
  XENGUEST_LIBRARY,
  XENGUEST_SYMBOLS,
} from "./xenguest.ts";
import { openLibrary } from "../_library.ts";
import {
  type CDialect,
  denoKind,
  prototype,
  stripComments,
} from "../_c_header.ts";

const LIBS = [
  { spec: XENCTRL_LIBRARY, header: "/usr/include/xenctrl.h" },
  { spec: XENFOREIGNMEMORY_LIBRARY, header: "/usr/include/xenforeignmemory.h" },
  { spec: XENSTORE_LIBRARY, header: "/usr/include/xenstore.h" },
  { spec: XENGUEST_LIBRARY, header: "/usr/include/xenguest.h" },
] as const;

function installed(name: string): boolean {
  try {
    Deno.dlopen(name, {}).close();
    return true;
  } catch {
    return false;
  }
}

const haveXen = installed("libxenctrl.so.4.17");
if (!haveXen) {
  console.warn(
    "libxen is not installed (apt-get install libxen-dev): Xen FFI tests skipped",
  );
}
const haveHeaders = (() => {
  try {
    return Deno.statSync("/usr/include/xenctrl.h").isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "every symbol of each table exists in the installed library",
  ignore: !haveXen,
  fn() {
    for (const { spec } of LIBS) {
      const lib = openLibrary(spec as Parameters<typeof openLibrary>[0]);
      for (const name of Object.keys(spec.symbols)) {
        assert.ok(
          name in lib.symbols,
          `${spec.name} lacks ${name}`,
        );
      }
      lib.close();
    }
  },
});

// ---- C prototypes from the headers, compared with the tables ----

/** Xen's scalar typedefs that are not standard C. */
const XEN: CDialect = {
  scalars: { "xs_transaction_t": "u32", "xc_stream_type_t": "i32" },
};

Deno.test({
  name: "symbol tables match the C prototypes in the installed headers",
  ignore: !haveHeaders,
  fn() {
    let checked = 0;
    for (const { spec, header } of LIBS) {
      const text = stripComments(Deno.readTextFileSync(header));
      for (
        const [name, def] of Object.entries(
          spec.symbols as Deno.ForeignLibraryInterface,
        )
      ) {
        const proto = prototype(text, name, XEN);
        const fn = def as Deno.ForeignFunction;
        assert.deepEqual(
          fn.parameters.map(denoKind),
          proto.params,
          `${name}: parameters`,
        );
        assert.equal(denoKind(fn.result), proto.result, `${name}: result`);
        checked++;
      }
    }
    const guest = stripComments(
      Deno.readTextFileSync("/usr/include/xenguest.h"),
    );
    const policy = prototype(
      guest.replace(
        /typedef int \(\*precopy_policy_t\)/,
        "int precopy_policy_t",
      ),
      "precopy_policy_t",
      XEN,
    );
    assert.deepEqual(
      PRECOPY_POLICY_DEF.parameters.map(denoKind),
      policy.params,
    );
    // The struct members `int (*suspend)(void *data);` and
    // `int (*switch_qemu_logdirty)(uint32_t, unsigned, void *);`.
    for (
      const [member, def] of [
        ["suspend", SUSPEND_DEF],
        ["switch_qemu_logdirty", SWITCH_QEMU_LOGDIRTY_DEF],
      ] as const
    ) {
      const proto = prototype(
        guest.replace(`int (*${member})(`, `int ${member}(`),
        member,
        XEN,
      );
      assert.deepEqual(def.parameters.map(denoKind), proto.params, member);
      assert.equal(denoKind(def.result), proto.result, member);
    }
    assert.ok(checked >= 20, `checked ${checked}`);
  },
});

Deno.test({
  name: "openXenctrl off a dom0 says so",
  ignore: !haveXen || (() => {
    try {
      Deno.statSync(PRIVCMD);
      return true; // a real dom0 (or Xen guest): nothing to check here
    } catch {
      return false;
    }
  })(),
  fn() {
    const e = assert.throws(() => openXenctrl(), XenError) as unknown;
    void e;
    try {
      openXenctrl();
    } catch (err) {
      assert.ok(err instanceof XenError);
      assert.ok(err instanceof FfiError);
      assert.equal(err.call, "xc_interface_open");
      assert.match(
        err.message,
        /^Not a Xen dom0: cannot open \/dev\/xen\/privcmd \(.+\): run hakobu on a Xen dom0 as root$/,
      );
      assert.ok(err.errno > 0);
    }
    assert.throws(() => openForeignMemory(), /Not a Xen dom0/);
    assert.throws(() => openXenstore(), /Not a Xen dom0/);
  },
});

Deno.test("a missing library names the override variable", () => {
  assert.throws(
    () => openXenctrlLibrary("/nonexistent/libxenctrl.so"),
    (e: unknown) =>
      e instanceof FfiError && /HAKOBU_LIBXENCTRL/.test(e.message),
  );
});

Deno.test("precopy_stats and save_callbacks encode as the C structs", () => {
  const b = encodePrecopyStats({
    iteration: 3,
    totalWritten: 2 ** 40,
    dirtyCount: -1,
  });
  assert.equal(b.length, 24);
  assert.deepEqual(decodePrecopyStats(b), {
    iteration: 3,
    totalWritten: 2 ** 40,
    dirtyCount: -1,
  });
  const cb = new Deno.UnsafeCallback(PRECOPY_POLICY_DEF, () => 0);
  const s = encodeSaveCallbacks({ precopyPolicy: cb.pointer });
  const v = new DataView(s.buffer);
  assert.equal(
    v.getBigUint64(SAVE_CALLBACKS.precopyPolicy, true),
    BigInt(Deno.UnsafePointer.value(cb.pointer)),
  );
  assert.equal(v.getBigUint64(SAVE_CALLBACKS.suspend, true), 0n);
  const suspend = new Deno.UnsafeCallback(SUSPEND_DEF, () => 1);
  const logdirty = new Deno.UnsafeCallback(SWITCH_QEMU_LOGDIRTY_DEF, () => 0);
  const full = new DataView(
    encodeSaveCallbacks({
      precopyPolicy: cb.pointer,
      suspend: suspend.pointer,
      switchQemuLogdirty: logdirty.pointer,
    }).buffer,
  );
  assert.equal(
    full.getBigUint64(SAVE_CALLBACKS.suspend, true),
    BigInt(Deno.UnsafePointer.value(suspend.pointer)),
  );
  assert.equal(
    full.getBigUint64(SAVE_CALLBACKS.switchQemuLogdirty, true),
    BigInt(Deno.UnsafePointer.value(logdirty.pointer)),
  );
  for (const off of [16, 24, 32, 48]) {
    assert.equal(full.getBigUint64(off, true), 0n, `offset ${off} stays NULL`);
  }
  suspend.close();
  logdirty.close();
  cb.close();
});

// Keep the symbol tables referenced so lint sees them used.
void [
  XENCTRL_SYMBOLS,
  XENFOREIGNMEMORY_SYMBOLS,
  XENSTORE_SYMBOLS,
  XENGUEST_SYMBOLS,
];

Deno.test("decodeDomainInfo reads the shutdown flag and its reason from bits 16..23", () => {
  const b = new Uint8Array(DOMAININFO.size);
  const v = new DataView(b.buffer);
  v.setUint16(DOMAININFO.domain, 9, true);
  v.setUint32(
    DOMAININFO.flags,
    DomInfoFlag.shutdown | DomInfoFlag.hvm | (2 << 16),
    true,
  );
  const d = decodeDomainInfo(b);
  assert.equal(d.domid, 9);
  assert.equal(d.shutdown, true);
  assert.equal(d.shutdownReason, ShutdownReason.suspend);
  v.setUint32(DOMAININFO.flags, DomInfoFlag.running | (3 << 16), true);
  const r = decodeDomainInfo(b);
  assert.equal(r.shutdown, false);
  assert.equal(r.shutdownReason, 0); // stale code bits without the flag mean nothing
});
