/**
 * Binding to libvirt (`libvirt.so.0`, Debian `libvirt0`; headers in
 * `libvirt-dev`): the symbol table with each C prototype, the lazy loader
 * (`HAKOBU_LIBVIRT` overrides the path), and the struct layouts the typed
 * API reads. `libvirt_test.ts` checks every prototype and struct offset
 * against the installed headers.
 *
 * On first load the library is initialised (`virInitialize`, as libvirt
 * asks of threaded programs) and its default error handler, which prints
 * every error to stderr, is replaced by a silent one: errors reach callers
 * as {@link LibvirtError}s instead (see `_quiet_errors` below).
 *
 * @module
 */

import { lazyLibrary, type LibrarySpec, openLibrary } from "../_library.ts";
import { libcSymbols, RTLD_NOLOAD, RTLD_NOW } from "./_libc.ts";

/** The libvirt symbols hakobu uses. */
export const LIBVIRT_SYMBOLS = {
  // int virInitialize(void);
  virInitialize: { parameters: [], result: "i32" },
  // void virSetErrorFunc(void *userData, virErrorFunc handler);
  virSetErrorFunc: { parameters: ["pointer", "function"], result: "void" },
  // virErrorPtr virGetLastError(void);
  virGetLastError: { parameters: [], result: "pointer" },
  // void virResetError(virErrorPtr err);
  virResetError: { parameters: ["pointer"], result: "void" },
  // int virGetVersion(unsigned long *libVer, const char *type, unsigned long *typeVer);
  virGetVersion: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },

  // virConnectPtr virConnectOpen(const char *name);
  virConnectOpen: { parameters: ["buffer"], result: "pointer" },
  // virConnectPtr virConnectOpenReadOnly(const char *name);
  virConnectOpenReadOnly: { parameters: ["buffer"], result: "pointer" },
  // int virConnectClose(virConnectPtr conn);
  virConnectClose: { parameters: ["pointer"], result: "i32" },
  // int virConnectIsAlive(virConnectPtr conn);
  virConnectIsAlive: { parameters: ["pointer"], result: "i32" },
  // char *virConnectGetHostname(virConnectPtr conn);
  virConnectGetHostname: { parameters: ["pointer"], result: "pointer" },
  // char *virConnectGetURI(virConnectPtr conn);
  virConnectGetURI: { parameters: ["pointer"], result: "pointer" },
  // const char *virConnectGetType(virConnectPtr conn);
  virConnectGetType: { parameters: ["pointer"], result: "pointer" },
  // int virConnectGetLibVersion(virConnectPtr conn, unsigned long *libVer);
  virConnectGetLibVersion: { parameters: ["pointer", "buffer"], result: "i32" },
  // int virConnectGetVersion(virConnectPtr conn, unsigned long *hvVer);
  virConnectGetVersion: { parameters: ["pointer", "buffer"], result: "i32" },
  // int virNodeGetInfo(virConnectPtr conn, virNodeInfoPtr info);
  virNodeGetInfo: { parameters: ["pointer", "buffer"], result: "i32" },
  // unsigned long long virNodeGetFreeMemory(virConnectPtr conn);
  virNodeGetFreeMemory: { parameters: ["pointer"], result: "u64" },

  // int virConnectListAllDomains(virConnectPtr conn, virDomainPtr **domains, unsigned int flags);
  virConnectListAllDomains: {
    parameters: ["pointer", "buffer", "u32"],
    result: "i32",
  },
  // virDomainPtr virDomainLookupByName(virConnectPtr conn, const char *name);
  virDomainLookupByName: {
    parameters: ["pointer", "buffer"],
    result: "pointer",
  },
  // int virDomainFree(virDomainPtr domain);
  virDomainFree: { parameters: ["pointer"], result: "i32" },
  // int virDomainRef(virDomainPtr domain);
  virDomainRef: { parameters: ["pointer"], result: "i32" },
  // const char *virDomainGetName(virDomainPtr domain);
  virDomainGetName: { parameters: ["pointer"], result: "pointer" },
  // unsigned int virDomainGetID(virDomainPtr domain);
  virDomainGetID: { parameters: ["pointer"], result: "u32" },
  // int virDomainGetUUIDString(virDomainPtr domain, char *buf);
  virDomainGetUUIDString: { parameters: ["pointer", "buffer"], result: "i32" },
  // int virDomainIsActive(virDomainPtr dom);
  virDomainIsActive: { parameters: ["pointer"], result: "i32" },
  // int virDomainIsPersistent(virDomainPtr dom);
  virDomainIsPersistent: { parameters: ["pointer"], result: "i32" },
  // int virDomainGetInfo(virDomainPtr domain, virDomainInfoPtr info);
  virDomainGetInfo: { parameters: ["pointer", "buffer"], result: "i32" },
  // int virDomainGetState(virDomainPtr domain, int *state, int *reason, unsigned int flags);
  virDomainGetState: {
    parameters: ["pointer", "buffer", "buffer", "u32"],
    result: "i32",
  },
  // char *virDomainGetXMLDesc(virDomainPtr domain, unsigned int flags);
  virDomainGetXMLDesc: { parameters: ["pointer", "u32"], result: "pointer" },

  // virDomainPtr virDomainCreateXML(virConnectPtr conn, const char *xmlDesc, unsigned int flags);
  virDomainCreateXML: {
    parameters: ["pointer", "buffer", "u32"],
    result: "pointer",
  },
  // virDomainPtr virDomainDefineXML(virConnectPtr conn, const char *xml);
  virDomainDefineXML: { parameters: ["pointer", "buffer"], result: "pointer" },
  // int virDomainCreate(virDomainPtr domain);
  virDomainCreate: { parameters: ["pointer"], result: "i32" },
  // int virDomainDestroy(virDomainPtr domain);
  virDomainDestroy: { parameters: ["pointer"], result: "i32" },
  // int virDomainUndefine(virDomainPtr domain);
  virDomainUndefine: { parameters: ["pointer"], result: "i32" },

  // int virConnectGetAllDomainStats(virConnectPtr conn, unsigned int stats, virDomainStatsRecordPtr **retStats, unsigned int flags);
  virConnectGetAllDomainStats: {
    parameters: ["pointer", "u32", "buffer", "u32"],
    result: "i32",
  },
  // int virDomainListGetStats(virDomainPtr *doms, unsigned int stats, virDomainStatsRecordPtr **retStats, unsigned int flags);
  virDomainListGetStats: {
    parameters: ["buffer", "u32", "buffer", "u32"],
    result: "i32",
  },
  // void virDomainStatsRecordListFree(virDomainStatsRecordPtr *stats);
  virDomainStatsRecordListFree: { parameters: ["pointer"], result: "void" },
  // int virDomainGetJobStats(virDomainPtr domain, int *type, virTypedParameterPtr *params, int *nparams, unsigned int flags);
  virDomainGetJobStats: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "u32"],
    result: "i32",
  },
  // void virTypedParamsFree(virTypedParameterPtr params, int nparams);
  virTypedParamsFree: { parameters: ["pointer", "i32"], result: "void" },

  // int virDomainMigrateToURI3(virDomainPtr domain, const char *dconnuri, virTypedParameterPtr params, unsigned int nparams, unsigned int flags);
  virDomainMigrateToURI3: {
    parameters: ["pointer", "buffer", "buffer", "u32", "u32"],
    result: "i32",
  },
  // int virDomainMigrateSetMaxDowntime(virDomainPtr domain, unsigned long long downtime, unsigned int flags);
  virDomainMigrateSetMaxDowntime: {
    parameters: ["pointer", "u64", "u32"],
    result: "i32",
  },
  // int virDomainMigrateGetMaxDowntime(virDomainPtr domain, unsigned long long *downtime, unsigned int flags);
  virDomainMigrateGetMaxDowntime: {
    parameters: ["pointer", "buffer", "u32"],
    result: "i32",
  },
  // int virDomainMigrateSetMaxSpeed(virDomainPtr domain, unsigned long bandwidth, unsigned int flags);
  virDomainMigrateSetMaxSpeed: {
    parameters: ["pointer", "u64", "u32"],
    result: "i32",
  },
  // int virDomainMigrateGetMaxSpeed(virDomainPtr domain, unsigned long *bandwidth, unsigned int flags);
  virDomainMigrateGetMaxSpeed: {
    parameters: ["pointer", "buffer", "u32"],
    result: "i32",
  },
  // int virDomainAbortJob(virDomainPtr dom);
  virDomainAbortJob: { parameters: ["pointer"], result: "i32" },
  // int virDomainMemoryPeek(virDomainPtr dom, unsigned long long start, size_t size, void *buffer, unsigned int flags);
  virDomainMemoryPeek: {
    parameters: ["pointer", "u64", "usize", "buffer", "u32"],
    result: "i32",
  },
  // int virDomainStartDirtyRateCalc(virDomainPtr domain, int seconds, unsigned int flags);
  virDomainStartDirtyRateCalc: {
    parameters: ["pointer", "i32", "u32"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** Where libvirt is looked for: `HAKOBU_LIBVIRT`, else `libvirt.so.0`. */
export const LIBVIRT_LIBRARY: LibrarySpec<typeof LIBVIRT_SYMBOLS> = {
  name: "libvirt",
  envVar: "HAKOBU_LIBVIRT",
  candidates: ["libvirt.so.0"],
  install: "apt-get install libvirt0",
  symbols: LIBVIRT_SYMBOLS,
};

const load = lazyLibrary(LIBVIRT_LIBRARY);
let ready = false;

/**
 * Replaces libvirt's default error handler (which prints every error to
 * stderr) with a silent one. The handler is a C function, not a
 * `Deno.UnsafeCallback`: libvirt calls it on whichever thread raised the
 * error (the migration Worker's, libvirt's own), where a JS callback would
 * have to hop back to its isolate and could deadlock with a thread blocked in
 * libvirt. The silent handler is libvirt's own `virResetError`: libvirt calls
 * `handler(userData, err)` with `userData` NULL, and `virResetError(NULL)`
 * returns at once; on the x86-64 and AArch64 C calling conventions the
 * second register argument is simply unused by a one-argument callee. The
 * error itself is kept: libvirt stores it as the thread's last error before
 * calling the handler, and {@link readLastError} reads it from there.
 */
function _quietErrors(): void {
  const { dlopen, dlsym } = libcSymbols();
  // The same path the loader used (RTLD_NOLOAD: a handle to that copy, never a new load).
  let path: string = LIBVIRT_LIBRARY.candidates[0];
  const env = { name: "env", variable: LIBVIRT_LIBRARY.envVar } as const;
  if (Deno.permissions.querySync(env).state === "granted") {
    path = Deno.env.get(LIBVIRT_LIBRARY.envVar) || path; // as the loader read it
  }
  const handle = dlopen(
    new TextEncoder().encode(path + "\0"),
    RTLD_NOW | RTLD_NOLOAD,
  );
  if (handle === null) return; // keep libvirt's default handler
  const fn = dlsym(handle, new TextEncoder().encode("virResetError\0"));
  if (fn !== null) load().virSetErrorFunc(null, fn);
}

/**
 * The libvirt symbols, loading and initialising the library on first call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libvirt } from "./libvirt.ts";
 *
 * const lib = libvirt(); // loads libvirt.so.0 on first use
 * const ver = new BigUint64Array(1);
 * assert.equal(lib.virGetVersion(new Uint8Array(ver.buffer), null, null), 0);
 * assert.ok(ver[0] >= 9_000_000n); // e.g. 9000000 for libvirt 9.0.0
 * ```
 * @throws {FfiError} When libvirt cannot be loaded (the message says
 *   `apt-get install libvirt0`).
 */
export function libvirt(): Deno.DynamicLibrary<
  typeof LIBVIRT_SYMBOLS
>["symbols"] {
  const lib = load();
  if (!ready) {
    ready = true;
    lib.virInitialize();
    _quietErrors();
  }
  return lib;
}

/**
 * Opens libvirt now from an explicit path (tests); not initialised.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openLibvirtLibrary } from "./libvirt.ts";
 *
 * const lib = openLibvirtLibrary("libvirt.so.0"); // a path or a soname
 * assert.equal(typeof lib.symbols.virConnectOpen, "function");
 * lib.close();
 * ```
 * @throws {FfiError} naming the path and `HAKOBU_LIBVIRT`.
 */
export function openLibvirtLibrary(
  path?: string,
): Deno.DynamicLibrary<typeof LIBVIRT_SYMBOLS> {
  return openLibrary(LIBVIRT_LIBRARY, { path });
}

/**
 * `struct _virError` (virterror.h) on x86-64: the fields hakobu reads, and
 * the size.
 */
export const VIR_ERROR = {
  size: 80,
  /** `int code` (virErrorNumber). */
  code: 0,
  /** `int domain` (virErrorDomain: which part of libvirt raised it). */
  domain: 4,
  /** `char *message`. */
  message: 8,
  /** `virErrorLevel level`. */
  level: 16,
} as const;

/** `struct _virNodeInfo` (libvirt-host.h) on x86-64. */
export const VIR_NODE_INFO = {
  size: 64,
  /** `char model[32]`. */
  model: 0,
  /** `unsigned long memory` (KiB). */
  memory: 32,
  /** `unsigned int cpus`. */
  cpus: 40,
  /** `unsigned int mhz`. */
  mhz: 44,
  /** `unsigned int nodes`. */
  nodes: 48,
  /** `unsigned int sockets`. */
  sockets: 52,
  /** `unsigned int cores`. */
  cores: 56,
  /** `unsigned int threads`. */
  threads: 60,
} as const;

/** `struct _virDomainInfo` (libvirt-domain.h) on x86-64. */
export const VIR_DOMAIN_INFO = {
  size: 40,
  /** `unsigned char state` (virDomainState). */
  state: 0,
  /** `unsigned long maxMem` (KiB). */
  maxMem: 8,
  /** `unsigned long memory` (KiB). */
  memory: 16,
  /** `unsigned short nrVirtCpu`. */
  nrVirtCpu: 24,
  /** `unsigned long long cpuTime` (ns). */
  cpuTime: 32,
} as const;

/** `struct _virTypedParameter` (libvirt-common.h) on x86-64. */
export const VIR_TYPED_PARAMETER = {
  size: 96,
  /** `char field[VIR_TYPED_PARAM_FIELD_LENGTH]`, NUL-terminated. */
  field: 0,
  /** `VIR_TYPED_PARAM_FIELD_LENGTH`. */
  fieldLength: 80,
  /** `int type` (virTypedParameterType). */
  type: 80,
  /** The `value` union. */
  value: 88,
} as const;

/** `struct _virDomainStatsRecord` (libvirt-domain.h) on x86-64. */
export const VIR_DOMAIN_STATS_RECORD = {
  size: 24,
  /** `virDomainPtr dom`. */
  dom: 0,
  /** `virTypedParameterPtr params`. */
  params: 8,
  /** `int nparams`. */
  nparams: 16,
} as const;

/** `VIR_UUID_STRING_BUFLEN` (libvirt-host.h): 36 characters and the NUL. */
export const VIR_UUID_STRING_BUFLEN = 37;
