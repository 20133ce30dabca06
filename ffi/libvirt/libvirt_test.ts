import assert from "node:assert/strict";
import { FfiError, openLibrary } from "../_library.ts";
import {
  type CDialect,
  defineString,
  denoKind,
  enumValue,
  prototype,
  stripComments,
} from "../_c_header.ts";
import {
  decodeJobStats,
  decodeTypedParams,
  DomainState,
  DomainStatsTypes,
  encodeTypedParams,
  ErrorCode,
  JobStatsFlags,
  JobType,
  libvirt,
  LIBVIRT_LIBRARY,
  LIBVIRT_SYMBOLS,
  LibvirtConnection,
  LibvirtError,
  ListDomainsFlags,
  MEMORY_PEEK_MAX_BYTES,
  MemoryFlags,
  MIGRATE_PARAM_MACROS,
  MigrateFlags,
  MigrateMaxSpeedFlags,
  migrateTypedParams,
  openLibvirtLibrary,
  type TypedParam,
  TypedParamType,
  VIR_DOMAIN_INFO,
  VIR_DOMAIN_STATS_RECORD,
  VIR_ERROR,
  VIR_NODE_INFO,
  VIR_TYPED_PARAMETER,
  VIR_UUID_STRING_BUFLEN,
} from "./mod.ts";

const INCLUDE = "/usr/include/libvirt";

function installed(name: string): boolean {
  try {
    Deno.dlopen(name, {}).close();
    return true;
  } catch {
    return false;
  }
}

const haveLibvirt = installed("libvirt.so.0");
if (!haveLibvirt) {
  console.warn(
    "libvirt is not installed (apt-get install libvirt0): libvirt FFI tests skipped",
  );
}
const haveHeaders = (() => {
  try {
    return Deno.statSync(`${INCLUDE}/libvirt.h`).isFile;
  } catch {
    return false;
  }
})();
if (!haveHeaders) {
  console.warn(
    "libvirt's headers are not installed (apt-get install libvirt-dev): header checks skipped",
  );
}
const haveCc = haveHeaders && (() => {
  try {
    return new Deno.Command("cc", { args: ["--version"], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/** libvirt's typedefs: every `virFooPtr` is a pointer. */
const LIBVIRT: CDialect = { pointers: [/^vir\w*Ptr$/] };
/** {@link LIBVIRT}, with the function typedef `virSetErrorFunc` takes. */
const LIBVIRT_ERROR_FUNC: CDialect = {
  pointers: [...LIBVIRT.pointers!, "virErrorFunc"],
};

/**
 * The typed-parameter type a macro's doc comment names (`as
 * VIR_TYPED_PARAM_ULLONG`, `Type is VIR_TYPED_PARAM_INT`), lower-cased
 * (`"ullong"`); undefined when the comment names none.
 */
function documentedParamType(
  text: string,
  name: string,
): string | undefined {
  const m = new RegExp(
    String
      .raw`/\*\*\s*\n\s*\*\s*${name}:([\s\S]*?)\*/\s*#\s*define\s+${name}\b`,
  ).exec(text);
  const t = m && /VIR_TYPED_PARAM_([A-Z]+)/.exec(m[1]);
  return t ? t[1].toLowerCase() : undefined;
}

/** Every libvirt header, concatenated (raw, and with comments stripped). */
function headers(): { raw: string; text: string } {
  const raw = [...Deno.readDirSync(INCLUDE)]
    .filter((e) => e.name.endsWith(".h"))
    .map((e) => Deno.readTextFileSync(`${INCLUDE}/${e.name}`))
    .join("\n");
  return { raw, text: stripComments(raw) };
}

// ---- the symbol table against the library and the headers ----

Deno.test({
  name: "libvirt: every symbol of the table exists in libvirt.so.0",
  ignore: !haveLibvirt,
  fn() {
    const lib = openLibvirtLibrary();
    for (const name of Object.keys(LIBVIRT_SYMBOLS)) {
      assert.equal(
        typeof (lib.symbols as Record<string, unknown>)[name],
        "function",
        `libvirt.so.0 lacks ${name}`,
      );
    }
    lib.close();
  },
});

Deno.test({
  name:
    "libvirt: the symbol table matches the C prototypes in the installed headers",
  ignore: !haveHeaders,
  fn() {
    const { text } = headers();
    let checked = 0;
    for (const [name, def] of Object.entries(LIBVIRT_SYMBOLS)) {
      const proto = prototype(text, name, LIBVIRT_ERROR_FUNC);
      const fn = def as Deno.ForeignFunction;
      assert.deepEqual(
        fn.parameters.map(denoKind),
        proto.params,
        `${name}: parameters`,
      );
      assert.equal(denoKind(fn.result), proto.result, `${name}: result`);
      checked++;
    }
    assert.equal(checked, Object.keys(LIBVIRT_SYMBOLS).length);
    assert.ok(checked >= 40, `checked ${checked}`);
  },
});

Deno.test({
  name:
    "libvirt: virDomainStartDirtyRateCalc is bound as libvirt-domain.h declares it",
  ignore: !haveHeaders,
  fn() {
    const { text } = headers();
    assert.deepEqual(prototype(text, "virDomainStartDirtyRateCalc", LIBVIRT), {
      result: "i32",
      params: ["ptr", "i32", "u32"],
    });
    const def = LIBVIRT_SYMBOLS.virDomainStartDirtyRateCalc;
    assert.deepEqual([...def.parameters], ["pointer", "i32", "u32"]);
    assert.equal(def.result, "i32");
  },
});

Deno.test("libvirt: the prototype parser reads libvirt's declarations", () => {
  const h = stripComments(
    "virConnectPtr           virConnectOpen          (const char *name);\n" +
      "int                     virConnectGetLibVersion (virConnectPtr conn,\n" +
      "                                                 unsigned long *libVer);\n" +
      "unsigned long long      virNodeGetFreeMemory    (virConnectPtr conn);\n" +
      "/* int virFake(void); */ int virDomainMigrateSetMaxDowntime (virDomainPtr domain,\n" +
      "  unsigned long long downtime, unsigned int flags);\n" +
      "void virSetErrorFunc(void *userData, virErrorFunc handler);\n",
  );
  assert.deepEqual(prototype(h, "virConnectOpen", LIBVIRT), {
    result: "ptr",
    params: ["ptr"],
  });
  assert.deepEqual(prototype(h, "virConnectGetLibVersion", LIBVIRT), {
    result: "i32",
    params: ["ptr", "ptr"],
  });
  assert.deepEqual(prototype(h, "virNodeGetFreeMemory", LIBVIRT), {
    result: "u64",
    params: ["ptr"],
  });
  assert.deepEqual(prototype(h, "virDomainMigrateSetMaxDowntime", LIBVIRT), {
    result: "i32",
    params: ["ptr", "u64", "u32"],
  });
  assert.deepEqual(prototype(h, "virSetErrorFunc", LIBVIRT_ERROR_FUNC), {
    result: "void",
    params: ["ptr", "ptr"],
  });
  assert.throws(
    () => prototype(h, "virFake", LIBVIRT),
    /No prototype for virFake/,
  );
  assert.throws(
    () => prototype(h, "virSetErrorFunc", LIBVIRT),
    /Unknown C type/,
  );
});

/** `cpuTotal` → `CPU_TOTAL`. */
function snake(key: string): string {
  return key.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

Deno.test({
  name: "libvirt: every enum value the binding uses matches the header",
  ignore: !haveHeaders,
  fn() {
    const { text } = headers();
    const tables: [Record<string, number>, (k: string) => string][] = [
      [DomainState, (k) => `VIR_DOMAIN_${snake(k)}`],
      [ListDomainsFlags, (k) => `VIR_CONNECT_LIST_DOMAINS_${snake(k)}`],
      [DomainStatsTypes, (k) => `VIR_DOMAIN_STATS_${snake(k)}`],
      [JobStatsFlags, (k) => `VIR_DOMAIN_JOB_STATS_${snake(k)}`],
      [JobType, (k) => `VIR_DOMAIN_JOB_${snake(k)}`],
      [MigrateFlags, (k) => `VIR_MIGRATE_${k}`],
      [MigrateMaxSpeedFlags, (k) => `VIR_DOMAIN_MIGRATE_MAX_SPEED_${k}`],
      [MemoryFlags, (k) => `VIR_MEMORY_${k}`],
      [TypedParamType, (k) => `VIR_TYPED_PARAM_${snake(k)}`],
      [ErrorCode, (k) => `VIR_ERR_${k}`],
    ];
    let checked = 0;
    for (const [table, cName] of tables) {
      for (const [key, value] of Object.entries(table)) {
        assert.equal(value, enumValue(text, cName(key)), cName(key));
        checked++;
      }
    }
    // The one the issue asks about by name.
    assert.equal(enumValue(text, "VIR_DOMAIN_STATS_DIRTYRATE"), 1 << 9);
    assert.ok(checked >= 70, `checked ${checked}`);
  },
});

Deno.test({
  name: "libvirt: migration parameter names and their C types match the header",
  ignore: !haveHeaders,
  fn() {
    const { raw } = headers();
    for (const [macro, name] of Object.entries(MIGRATE_PARAM_MACROS)) {
      assert.equal(defineString(raw, macro), name, macro);
    }
    // Every parameter MigrateParams can set, with the type the header documents.
    const all = migrateTypedParams({
      migrateUri: "tcp://a:1",
      listenAddress: "127.0.0.2",
      bandwidthMiBs: 1,
      bandwidthPostcopyMiBs: 1,
      destinationName: "x",
      destinationXml: "<domain/>",
      persistentXml: "<domain/>",
      graphicsUri: "spice://a",
      parallelConnections: 2,
      compression: ["xbzrle"],
      compressionMtLevel: 1,
      compressionMtThreads: 1,
      compressionMtDthreads: 1,
      compressionXbzrleCacheBytes: 1,
      autoConvergeInitial: 20,
      autoConvergeIncrement: 10,
      migrateDisks: ["vda"],
      disksPort: 1,
      disksUri: "tcp://a:2",
      tlsDestination: "host",
    });
    const names = new Set(Object.values(MIGRATE_PARAM_MACROS));
    assert.equal(new Set(all.map((p) => p.field)).size, names.size);
    let documented = 0;
    for (const p of all) {
      assert.ok(names.has(p.field), p.field);
      const macro = Object.entries(MIGRATE_PARAM_MACROS).find(([, v]) =>
        v === p.field
      )![0];
      const doc = documentedParamType(raw, macro);
      if (doc !== undefined) {
        assert.equal(p.type, doc, `${macro} is documented as ${doc}`);
        documented++;
      }
    }
    assert.ok(documented >= 15, `documented ${documented}`);
  },
});

Deno.test({
  name: "libvirt: every VIR_DOMAIN_JOB_* field lands in a JobStats field",
  ignore: !haveHeaders,
  fn() {
    const { raw } = headers();
    const fields = [
      ...raw.matchAll(/#\s*define\s+(VIR_DOMAIN_JOB_[A-Z_]+)\s+"([a-z_]+)"/g),
    ].map((m) => ({ macro: m[1], field: m[2] }));
    assert.ok(fields.length >= 30, `found ${fields.length}`);
    const params: TypedParam[] = fields.map(({ field }, i) =>
      field === "success"
        ? { field, type: "boolean", value: true }
        : field === "errmsg"
        ? { field, type: "string", value: "boom" }
        : field === "operation" || field === "auto_converge_throttle"
        ? { field, type: "int", value: i + 1 }
        : { field, type: "ullong", value: BigInt(i + 1) }
    );
    const s = decodeJobStats(JobType.unbounded, params);
    // Each JobStats field a steerer reads is filled from its header name.
    for (
      const k of [
        "operation",
        "timeElapsedMs",
        "timeRemainingMs",
        "setupTimeMs",
        "downtimeMs",
        "expectedDowntimeMs",
        "downtimeNetMs",
        "dataTotal",
        "dataProcessed",
        "dataRemaining",
        "memoryTotal",
        "memoryProcessed",
        "memoryRemaining",
        "memoryConstantPages",
        "memoryNormalPages",
        "memoryNormalBytes",
        "memoryBps",
        "memoryDirtyRatePages",
        "memoryDirtyRateBytes",
        "memoryIteration",
        "memoryPageSize",
        "postcopyRequests",
        "autoConvergeThrottle",
        "success",
        "errmsg",
      ] as const
    ) {
      assert.notEqual(s[k], undefined, `JobStats.${k}`);
    }
    assert.deepEqual(Object.keys(s.compression ?? {}).sort(), [
      "bytes",
      "cacheBytes",
      "cacheMisses",
      "overflow",
      "pages",
    ]);
    const at = (f: string) => fields.findIndex((x) => x.field === f) + 1;
    assert.equal(s.memoryRemaining, at("memory_remaining"));
    assert.equal(s.memoryIteration, at("memory_iteration"));
    assert.equal(
      s.memoryDirtyRateBytes,
      at("memory_dirty_rate") * at("memory_page_size"),
    );
    assert.equal(Object.keys(s.raw).length, fields.length);
    // A completed job's downtime is the real one, not an expectation.
    const done = decodeJobStats(JobType.completed, [
      { field: "downtime", type: "ullong", value: 40n },
    ]);
    assert.equal(done.downtimeMs, 40);
    assert.equal(done.expectedDowntimeMs, undefined);
    assert.equal(done.active, false);
    assert.equal(decodeJobStats(JobType.none, []).typeName, "none");
  },
});

Deno.test({
  name: "libvirt: struct layouts match offsetof against the installed headers",
  ignore: !haveCc,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "hakobu-libvirt-" });
    try {
      const src = `${dir}/layout.c`;
      await Deno.writeTextFile(
        src,
        `#include <stdio.h>
#include <stddef.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#define F(t, f) printf("\\"%s.%s\\": %zu,\\n", #t, #f, offsetof(t, f))
#define S(t) printf("\\"%s\\": %zu,\\n", #t, sizeof(t))
int main(void) {
  printf("{\\n");
  S(virError); F(virError, code); F(virError, domain); F(virError, message); F(virError, level);
  S(virNodeInfo); F(virNodeInfo, model); F(virNodeInfo, memory); F(virNodeInfo, cpus);
  F(virNodeInfo, mhz); F(virNodeInfo, nodes); F(virNodeInfo, sockets); F(virNodeInfo, cores);
  F(virNodeInfo, threads);
  S(virDomainInfo); F(virDomainInfo, state); F(virDomainInfo, maxMem); F(virDomainInfo, memory);
  F(virDomainInfo, nrVirtCpu); F(virDomainInfo, cpuTime);
  S(virTypedParameter); F(virTypedParameter, field); F(virTypedParameter, type);
  F(virTypedParameter, value);
  S(virDomainStatsRecord); F(virDomainStatsRecord, dom); F(virDomainStatsRecord, params);
  F(virDomainStatsRecord, nparams);
  printf("\\"VIR_TYPED_PARAM_FIELD_LENGTH\\": %d,\\n", VIR_TYPED_PARAM_FIELD_LENGTH);
  printf("\\"VIR_UUID_STRING_BUFLEN\\": %d\\n}\\n", VIR_UUID_STRING_BUFLEN);
  return 0;
}
`,
      );
      const cc = await new Deno.Command("cc", {
        args: ["-o", `${dir}/layout`, src],
        stderr: "piped",
      }).output();
      assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
      const out = await new Deno.Command(`${dir}/layout`).output();
      const c = JSON.parse(new TextDecoder().decode(out.stdout)) as Record<
        string,
        number
      >;
      const expect: [Record<string, number>, string][] = [
        [VIR_ERROR, "virError"],
        [VIR_NODE_INFO, "virNodeInfo"],
        [VIR_DOMAIN_INFO, "virDomainInfo"],
        [VIR_DOMAIN_STATS_RECORD, "virDomainStatsRecord"],
      ];
      for (const [layout, struct] of expect) {
        for (const [field, off] of Object.entries(layout)) {
          const key = field === "size" ? struct : `${struct}.${field}`;
          assert.equal(off, c[key], key);
        }
      }
      assert.equal(VIR_TYPED_PARAMETER.size, c.virTypedParameter);
      assert.equal(VIR_TYPED_PARAMETER.field, c["virTypedParameter.field"]);
      assert.equal(VIR_TYPED_PARAMETER.type, c["virTypedParameter.type"]);
      assert.equal(VIR_TYPED_PARAMETER.value, c["virTypedParameter.value"]);
      assert.equal(
        VIR_TYPED_PARAMETER.fieldLength,
        c.VIR_TYPED_PARAM_FIELD_LENGTH,
      );
      assert.equal(VIR_UUID_STRING_BUFLEN, c.VIR_UUID_STRING_BUFLEN);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("libvirt: a missing library names the package and the override", () => {
  assert.throws(
    () =>
      openLibrary({ ...LIBVIRT_LIBRARY, candidates: ["libvirt.so.nothere"] }),
    (e: unknown) =>
      e instanceof FfiError && e.library === "libvirt" &&
      /apt-get install libvirt0/.test(e.message) &&
      /HAKOBU_LIBVIRT/.test(e.message),
  );
  assert.throws(
    () => openLibvirtLibrary("/nonexistent/libvirt.so.0"),
    (e: unknown) =>
      e instanceof FfiError && /HAKOBU_LIBVIRT/.test(e.message) &&
      e.tried.includes("/nonexistent/libvirt.so.0"),
  );
});

// ---- typed parameters, both ways, against libvirt's own helpers ----

/** libvirt's typed-parameter helpers, to build and read arrays the way libvirt does. */
const TP_SYMBOLS = {
  virTypedParamsAddInt: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  virTypedParamsAddUInt: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "u32"],
    result: "i32",
  },
  virTypedParamsAddLLong: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "i64"],
    result: "i32",
  },
  virTypedParamsAddULLong: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "u64"],
    result: "i32",
  },
  virTypedParamsAddDouble: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "f64"],
    result: "i32",
  },
  virTypedParamsAddBoolean: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  virTypedParamsAddString: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  virTypedParamsGetULLong: {
    parameters: ["buffer", "i32", "buffer", "buffer"],
    result: "i32",
  },
  virTypedParamsGetLLong: {
    parameters: ["buffer", "i32", "buffer", "buffer"],
    result: "i32",
  },
  virTypedParamsGetInt: {
    parameters: ["buffer", "i32", "buffer", "buffer"],
    result: "i32",
  },
  virTypedParamsGetUInt: {
    parameters: ["buffer", "i32", "buffer", "buffer"],
    result: "i32",
  },
  virTypedParamsGetDouble: {
    parameters: ["buffer", "i32", "buffer", "buffer"],
    result: "i32",
  },
  virTypedParamsGetBoolean: {
    parameters: ["buffer", "i32", "buffer", "buffer"],
    result: "i32",
  },
  virTypedParamsGetString: {
    parameters: ["buffer", "i32", "buffer", "buffer"],
    result: "i32",
  },
  virTypedParamsFree: { parameters: ["pointer", "i32"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

const cs = (s: string) => new TextEncoder().encode(s + "\0");

Deno.test({
  name:
    "libvirt: decodeTypedParams reads arrays libvirt built (all seven types)",
  ignore: !haveLibvirt || !haveHeaders,
  fn() {
    const { text } = headers();
    for (const name of Object.keys(TP_SYMBOLS)) {
      const proto = prototype(text, name, LIBVIRT);
      const def = TP_SYMBOLS[name as keyof typeof TP_SYMBOLS];
      assert.deepEqual(
        (def.parameters as readonly Deno.NativeType[]).map(denoKind),
        proto.params,
        name,
      );
    }
    // libvirt must be initialised before any call (virInitialize creates the
    // thread-local error slot that every API resets first): libvirt() does it.
    libvirt();
    const lib = Deno.dlopen("libvirt.so.0", TP_SYMBOLS);
    try {
      const params = new BigUint64Array(1);
      const n = new Int32Array(1);
      const max = new Int32Array(1);
      const args = [
        new Uint8Array(params.buffer),
        new Uint8Array(n.buffer),
        new Uint8Array(max.buffer),
      ] as const;
      const s = lib.symbols;
      assert.equal(s.virTypedParamsAddInt(...args, cs("i"), -7), 0);
      assert.equal(s.virTypedParamsAddUInt(...args, cs("u"), 4_000_000_000), 0);
      assert.equal(s.virTypedParamsAddLLong(...args, cs("l"), -(2n ** 40n)), 0);
      assert.equal(
        s.virTypedParamsAddULLong(...args, cs("ul"), 2n ** 63n + 5n),
        0,
      );
      assert.equal(s.virTypedParamsAddDouble(...args, cs("d"), 0.25), 0);
      assert.equal(s.virTypedParamsAddBoolean(...args, cs("b"), 1), 0);
      assert.equal(
        s.virTypedParamsAddString(...args, cs("s"), cs("tcp://x:1")),
        0,
      );
      const p = Deno.UnsafePointer.create(params[0]);
      assert.deepEqual(decodeTypedParams(p, n[0]), [
        { field: "i", type: "int", value: -7 },
        { field: "u", type: "uint", value: 4_000_000_000 },
        { field: "l", type: "llong", value: -(2n ** 40n) },
        { field: "ul", type: "ullong", value: 2n ** 63n + 5n },
        { field: "d", type: "double", value: 0.25 },
        { field: "b", type: "boolean", value: true },
        { field: "s", type: "string", value: "tcp://x:1" },
      ]);
      s.virTypedParamsFree(p, n[0]);
    } finally {
      lib.close();
    }
  },
});

Deno.test({
  name:
    "libvirt: encodeTypedParams lays out arrays libvirt's getters read back",
  ignore: !haveLibvirt,
  fn() {
    // libvirt must be initialised before any call (virInitialize creates the
    // thread-local error slot that every API resets first): libvirt() does it.
    libvirt();
    const lib = Deno.dlopen("libvirt.so.0", TP_SYMBOLS);
    try {
      const enc = encodeTypedParams([
        { field: "i", type: "int", value: -7 },
        { field: "u", type: "uint", value: 4_000_000_000 },
        { field: "l", type: "llong", value: -(2n ** 40n) },
        { field: "ul", type: "ullong", value: 2 ** 40 }, // a number is fine too
        { field: "d", type: "double", value: 0.25 },
        { field: "b", type: "boolean", value: true },
        { field: "s", type: "string", value: "tcp://x:1" },
      ]);
      const s = lib.symbols;
      const get = (
        fn: (
          a: Uint8Array,
          n: number,
          name: Uint8Array,
          out: Uint8Array,
        ) => number,
        name: string,
        out: ArrayBufferView,
      ) => {
        assert.equal(
          fn(enc.bytes, enc.count, cs(name), new Uint8Array(out.buffer)),
          1,
          name,
        );
      };
      const i32 = new Int32Array(1);
      get(s.virTypedParamsGetInt, "i", i32);
      assert.equal(i32[0], -7);
      const u32 = new Uint32Array(1);
      get(s.virTypedParamsGetUInt, "u", u32);
      assert.equal(u32[0], 4_000_000_000);
      const i64 = new BigInt64Array(1);
      get(s.virTypedParamsGetLLong, "l", i64);
      assert.equal(i64[0], -(2n ** 40n));
      const u64 = new BigUint64Array(1);
      get(s.virTypedParamsGetULLong, "ul", u64);
      assert.equal(u64[0], 2n ** 40n);
      const f64 = new Float64Array(1);
      get(s.virTypedParamsGetDouble, "d", f64);
      assert.equal(f64[0], 0.25);
      const b = new Int32Array(1);
      get(s.virTypedParamsGetBoolean, "b", b);
      assert.equal(b[0], 1);
      const sp = new BigUint64Array(1);
      get(s.virTypedParamsGetString, "s", sp);
      assert.equal(
        Deno.UnsafePointerView.getCString(Deno.UnsafePointer.create(sp[0])!),
        "tcp://x:1",
      );
      // A wrong type is refused by libvirt's getter, as for a real mismatch.
      assert.equal(
        s.virTypedParamsGetInt(
          enc.bytes,
          enc.count,
          cs("ul"),
          new Uint8Array(4),
        ),
        -1,
      );
      void enc.strings;
    } finally {
      lib.close();
    }
  },
});

Deno.test("libvirt: encodeTypedParams refuses what C cannot hold", () => {
  assert.throws(
    () => encodeTypedParams([{ field: "x".repeat(80), type: "int", value: 1 }]),
    /is 80 bytes: libvirt allows at most 79/,
  );
  assert.throws(
    () => encodeTypedParams([{ field: "i", type: "int", value: 2 ** 31 }]),
    /does not fit a C int/,
  );
  assert.throws(
    () => encodeTypedParams([{ field: "u", type: "uint", value: -1 }]),
    /does not fit a C uint/,
  );
  assert.throws(
    () => encodeTypedParams([{ field: "u", type: "ullong", value: -1n }]),
    /does not fit a C ullong/,
  );
  assert.equal(encodeTypedParams([]).count, 0);
});

// ---- against libvirt's in-process test driver (test:///default, no daemon) ----

const URI = "test:///default";
const NAME = "hakobu-libvirt-test";
const XML = `<domain type='test'>
  <name>${NAME}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
</domain>`;

Deno.test({
  name:
    "libvirt: test:///default: connect, host, node info, versions, close twice",
  ignore: !haveLibvirt,
  fn() {
    const conn = LibvirtConnection.open(URI);
    assert.equal(conn.uri, URI);
    assert.equal(conn.canonicalUri(), URI);
    assert.equal(conn.driverType(), "TEST");
    assert.ok(conn.isAlive());
    assert.ok(conn.hostname().length > 0);
    // The test driver's fixed host: 16 CPUs in 2 cells, 2 sockets x 2 cores x 2 threads.
    const node = conn.nodeInfo();
    assert.equal(node.cpus, 16);
    assert.equal(node.nodes * node.sockets * node.cores * node.threads, 16);
    assert.ok(node.memoryBytes > 0 && node.memoryBytes % 1024 === 0);
    assert.ok(node.mhz > 0);
    assert.ok(node.model.length > 0);
    const free = conn.freeMemory();
    assert.ok(free > 0 && free <= node.memoryBytes, `free ${free}`);
    const lib = conn.libVersion();
    assert.equal(
      lib.raw,
      lib.major * 1_000_000 + lib.minor * 1000 + lib.release,
    );
    assert.ok(lib.major >= 9);
    assert.ok(conn.hypervisorVersion().raw > 0);
    conn.close();
    assert.equal(conn.closed, true);
    assert.equal(conn.isAlive(), false);
    conn.close(); // idempotent
    assert.throws(() => conn.hostname(), RangeError);
  },
});

Deno.test({
  name:
    "libvirt: test:///default: list, look up, info, state, XML, stats of the running domain",
  ignore: !haveLibvirt,
  fn() {
    using conn = LibvirtConnection.open(URI, { readOnly: true });
    const all = conn.listDomains();
    const test = all.find((d) => d.name === "test");
    assert.ok(test, JSON.stringify(all));
    assert.equal(test.state, DomainState.running);
    assert.equal(test.stateName, "running");
    assert.equal(test.active, true);
    assert.equal(test.persistent, true);
    assert.ok(test.id !== undefined && test.id > 0);
    assert.match(test.uuid, /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/);
    assert.deepEqual(
      conn.listDomains(ListDomainsFlags.inactive).filter((d) =>
        d.name === "test"
      ),
      [],
    );

    using dom = conn.lookupDomain("test");
    assert.equal(dom.name, "test");
    assert.equal(dom.uuid, test.uuid);
    assert.equal(dom.id(), test.id);
    assert.equal(dom.isActive(), true);
    const info = dom.info();
    assert.equal(info.state, DomainState.running);
    assert.ok(info.vcpus >= 1);
    assert.ok(info.memoryBytes > 0 && info.memoryBytes <= info.maxMemoryBytes);
    assert.equal(typeof info.cpuTimeNs, "bigint");
    assert.deepEqual(dom.state(), {
      state: DomainState.running,
      stateName: "running",
      reason: dom.state().reason,
    });
    const xml = dom.xml();
    assert.match(xml, /<name>test<\/name>/);
    assert.ok(xml.includes(`<uuid>${test.uuid}</uuid>`));

    // Typed parameters through the driver: the test driver answers the state group.
    const stats = dom.stats(
      DomainStatsTypes.state | DomainStatsTypes.balloon |
        DomainStatsTypes.vcpu | DomainStatsTypes.dirtyrate,
    );
    assert.equal(stats.name, "test");
    assert.equal(stats.uuid, test.uuid);
    assert.equal(stats.state, DomainState.running);
    assert.deepEqual(
      stats.params.find((p) => p.field === "state.state"),
      { field: "state.state", type: "int", value: DomainState.running },
    );
    assert.equal(stats.record["state.state"], DomainState.running);
    const every = conn.allDomainStats();
    assert.ok(
      every.some((s) => s.name === "test" && s.state === DomainState.running),
    );
  },
});

Deno.test({
  name:
    "libvirt: test:///default: define, start, see from another connection, destroy, undefine",
  ignore: !haveLibvirt,
  fn() {
    using conn = LibvirtConnection.open(URI);
    using other = LibvirtConnection.open(URI); // the default test driver is shared in a process
    assert.equal(conn.findDomain(NAME), undefined);
    using dom = conn.defineDomain(XML);
    try {
      assert.equal(dom.name, NAME);
      assert.equal(dom.isActive(), false);
      assert.equal(dom.isPersistent(), true);
      assert.equal(dom.id(), undefined);
      assert.equal(dom.state().stateName, "shutoff");
      const listed = conn.listDomains(ListDomainsFlags.inactive).find((d) =>
        d.name === NAME
      );
      assert.equal(listed?.active, false);
      assert.equal(listed?.id, undefined);

      dom.create();
      assert.equal(dom.isActive(), true);
      assert.equal(dom.state().stateName, "running");
      assert.ok(dom.id() !== undefined);
      assert.equal(dom.info().memoryBytes, 256 * 2 ** 20);
      {
        using seen = other.findDomain(NAME);
        assert.ok(seen, "the domain is visible on a second connection");
        assert.equal(seen.uuid, dom.uuid);
        assert.equal(seen.isActive(), true);
      }
      // Starting it twice is refused with libvirt's reason.
      assert.throws(
        () => dom.create(),
        (e: unknown) =>
          e instanceof LibvirtError && e.call === "virDomainCreate" &&
          e.code > 0 && e.domainName === NAME &&
          /already running/.test(e.libvirtMessage),
      );

      dom.destroy();
      assert.equal(dom.isActive(), false);
      assert.equal(dom.state().stateName, "shutoff");
    } finally {
      dom.undefine();
    }
    assert.equal(conn.findDomain(NAME), undefined);
    assert.equal(other.findDomain(NAME), undefined);
    dom.free();
    dom.free(); // idempotent
    assert.throws(() => dom.state(), RangeError);

    // A transient domain: running at once, gone once destroyed.
    using t = conn.createDomain(XML.replace(NAME, `${NAME}-transient`));
    assert.equal(t.isActive(), true);
    assert.equal(t.isPersistent(), false);
    t.destroy();
    assert.equal(conn.findDomain(`${NAME}-transient`), undefined);
  },
});

Deno.test({
  name:
    "libvirt: errors carry libvirt's code and message, the call, the URI and the domain",
  ignore: !haveLibvirt,
  async fn() {
    // A URI no in-process driver takes goes to a daemon that is not running.
    for (const open of [LibvirtConnection.open, LibvirtConnection.openAsync]) {
      await assert.rejects(
        async () => await open("qemu:///hakobu-no-such-daemon"),
        (e: unknown) => {
          assert.ok(e instanceof LibvirtError, String(e));
          assert.equal(e.call, "virConnectOpen");
          assert.equal(e.uri, "qemu:///hakobu-no-such-daemon");
          assert.ok(e.code > 0);
          assert.ok(e.libvirtMessage.length > 0);
          assert.ok(
            e.message.startsWith(
              `Cannot connect to libvirt on "qemu:///hakobu-no-such-daemon": virConnectOpen failed: `,
            ),
            e.message,
          );
          assert.ok(e.message.endsWith(e.libvirtMessage));
          return true;
        },
      );
    }
    using conn = LibvirtConnection.open(URI);
    assert.throws(
      () => conn.lookupDomain("nosuch"),
      (e: unknown) =>
        e instanceof LibvirtError && e.code === ErrorCode.NO_DOMAIN &&
        e.domainName === "nosuch" &&
        e.message.startsWith(
          `Cannot look up domain "nosuch" on "${URI}": virDomainLookupByName failed: Domain not found`,
        ),
    );
    // Read-only connections refuse changes, in libvirt's words.
    using ro = LibvirtConnection.open(URI, { readOnly: true });
    assert.throws(
      () => ro.defineDomain(XML),
      (e: unknown) =>
        e instanceof LibvirtError && e.call === "virDomainDefineXML" &&
        /read only/.test(e.libvirtMessage),
    );
    assert.throws(
      () => conn.defineDomain("<domain"),
      (e: unknown) =>
        e instanceof LibvirtError && e.call === "virDomainDefineXML" &&
        e.libvirtMessage.length > 0,
    );
  },
});

Deno.test({
  name: "libvirt: libvirt's errors are not printed on stderr",
  ignore: !haveLibvirt,
  async fn() {
    const mod = new URL("./mod.ts", import.meta.url).href;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { LibvirtConnection } from "${mod}";
         const c = LibvirtConnection.open("test:///default");
         try { c.lookupDomain("nosuch"); } catch (e) { console.log(e.code); }`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, stderr);
    assert.equal(stdout.trim(), String(ErrorCode.NO_DOMAIN));
    assert.doesNotMatch(stderr, /libvirt:/);
  },
});

Deno.test({
  name:
    "libvirt: test:///default has no job stats or migration knobs, and says so",
  ignore: !haveLibvirt,
  fn() {
    using conn = LibvirtConnection.open(URI);
    using dom = conn.lookupDomain("test");
    for (
      const [call, f] of [
        ["virDomainGetJobStats", () => dom.jobStats()],
        ["virDomainMigrateSetMaxDowntime", () => dom.setMaxDowntime(300)],
        ["virDomainMigrateGetMaxDowntime", () => dom.maxDowntime()],
        ["virDomainMigrateSetMaxSpeed", () => dom.setMaxSpeed(100)],
        ["virDomainMigrateGetMaxSpeed", () => dom.maxSpeed()],
        ["virDomainAbortJob", () => dom.abortJob()],
        ["virDomainStartDirtyRateCalc", () => dom.startDirtyRateCalc(1)],
      ] as const
    ) {
      assert.throws(
        f,
        (e: unknown) =>
          e instanceof LibvirtError && e.call === call &&
          e.code === ErrorCode.NO_SUPPORT && e.domainName === "test" &&
          e.libvirtMessage ===
            `this function is not supported by the connection driver: ${call}`,
        call,
      );
    }
  },
});

// ---- the Worker path: blocking calls off the JS thread, errors read on the Worker's ----

Deno.test({
  name:
    "libvirt: abort-job and max downtime on a Worker bring libvirt's error back, and the handle stays usable",
  ignore: !haveLibvirt,
  async fn() {
    using conn = LibvirtConnection.open(URI);
    using dom = conn.lookupDomain("test");
    for (
      const [call, f] of [
        ["virDomainAbortJob", () => dom.abortJobAsync()],
        ["virDomainMigrateSetMaxDowntime", () => dom.setMaxDowntimeAsync(5)],
      ] as const
    ) {
      await assert.rejects(
        f,
        (e: unknown) =>
          e instanceof LibvirtError && e.call === call &&
          e.code === ErrorCode.NO_SUPPORT && e.domainName === "test" &&
          e.uri === URI &&
          e.libvirtMessage ===
            `this function is not supported by the connection driver: ${call}`,
        call,
      );
    }
    // The Worker's reference on the domain was its own.
    assert.equal(dom.state().stateName, "running");
  },
});

Deno.test({
  name:
    "libvirt: memoryPeek reads the bytes asked for, and refuses sizes the remote protocol cannot carry before calling libvirt",
  ignore: !haveLibvirt,
  fn() {
    using conn = LibvirtConnection.open(URI);
    using dom = conn.lookupDomain("test");
    for (const size of [0, -1, 1.5, MEMORY_PEEK_MAX_BYTES + 1]) {
      assert.throws(
        () => dom.memoryPeek(0, size),
        (e: unknown) =>
          e instanceof RangeError &&
          /carries 1 to 65536 bytes per call/.test(e.message),
        String(size),
      );
    }
    assert.throws(() => dom.memoryPeek(-4096, 4096), /guest-physical address/);
    // The test driver's memory reads as each address's low byte: the
    // bytes come back from where they were asked, all of them.
    const at = 0x100005;
    const got = dom.memoryPeek(at, MEMORY_PEEK_MAX_BYTES);
    assert.equal(got.length, MEMORY_PEEK_MAX_BYTES);
    assert.ok(got.every((b, i) => b === ((at + i) & 0xff)));
  },
});

Deno.test({
  name:
    "libvirt: migrate fails with libvirt's message read on the Worker's thread",
  ignore: !haveLibvirt,
  async fn() {
    using conn = LibvirtConnection.open(URI);
    using dom = conn.lookupDomain("test");
    // The test driver cannot migrate: peer-to-peer is refused by the source,
    // direct migration too. Both come back through the Worker.
    const cases = [
      {
        dconnuri: "qemu+tcp://127.0.0.1:1/system",
        flags: MigrateFlags.LIVE | MigrateFlags.PEER2PEER,
        reason:
          "argument unsupported: p2p migration is not supported by the source host",
      },
      {
        dconnuri: null,
        flags: MigrateFlags.LIVE,
        reason:
          "argument unsupported: direct migration is not supported by the source host",
      },
    ];
    for (const { dconnuri, flags, reason } of cases) {
      await assert.rejects(
        () =>
          dom.migrate(dconnuri, {
            flags,
            params: {
              migrateUri: "tcp://127.0.0.1:1",
              bandwidthMiBs: 10,
              parallelConnections: 2,
              compression: ["xbzrle"],
            },
          }),
        (e: unknown) => {
          assert.ok(e instanceof LibvirtError, String(e));
          assert.equal(e.call, "virDomainMigrateToURI3");
          assert.equal(e.code, ErrorCode.ARGUMENT_UNSUPPORTED);
          assert.equal(e.libvirtMessage, reason);
          assert.equal(e.uri, URI);
          assert.equal(e.domainName, "test");
          assert.match(e.message, /^Cannot migrate domain "test" to /);
          return true;
        },
      );
    }
    // The handle is intact (the Worker's reference was released, not ours).
    assert.equal(dom.state().stateName, "running");
    // An already-aborted signal never starts the migration.
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(
      () => dom.migrate("test:///default", { signal: ac.signal }),
      (e: unknown) =>
        e instanceof LibvirtError && e.code === ErrorCode.OPERATION_ABORTED,
    );
  },
});

Deno.test({
  name:
    "libvirt: a blocking call on the Worker leaves the event loop running, then fails with libvirt's message",
  ignore: !haveLibvirt,
  async fn() {
    // A "libvirt daemon" that accepts the connection and never answers:
    // virConnectOpen blocks in C on the Worker's thread until we hang up.
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const uri = `test+tcp://127.0.0.1:${port}/default`;
    let settled = false;
    const opening = LibvirtConnection.openAsync(uri).finally(() => {
      settled = true;
    });
    opening.catch(() => {});
    // The main thread accepts and reads the client's first RPC while libvirt waits for the answer.
    const peer = await listener.accept();
    const hello = new Uint8Array(1024);
    const n = await peer.read(hello);
    assert.ok(n !== null && n >= 4, "libvirt sent its first call");
    // Its length word, big-endian, is the RPC message's length.
    assert.equal(new DataView(hello.buffer).getUint32(0), n);
    let ticks = 0;
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (++ticks === 3) {
          clearInterval(t);
          resolve();
        }
      }, 10);
    });
    assert.equal(ticks, 3);
    assert.equal(settled, false, "still inside virConnectOpen on the Worker");
    peer.close();
    await assert.rejects(() => opening, (e: unknown) => {
      assert.ok(e instanceof LibvirtError, String(e));
      assert.equal(e.call, "virConnectOpen");
      assert.equal(e.uri, uri);
      assert.ok(e.code > 0);
      assert.match(e.libvirtMessage, /End of file|Connection reset|closed/i);
      return true;
    });
  },
});
