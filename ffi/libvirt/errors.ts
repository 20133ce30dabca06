/**
 * {@link LibvirtError}: a libvirt call failed, with libvirt's own error
 * (`virGetLastError`: code, domain, message) and which call, URI and domain
 * it was; {@link readLastError}, the one place that reads the thread's last
 * error, and {@link libvirtError}, the one place that words the message.
 *
 * libvirt keeps the last error per thread: read it on the thread that made
 * the failed call, straight after it (a synchronous FFI call runs on the JS
 * thread; the migration Worker reads its own and posts it back).
 *
 * @module
 */

import { FfiError } from "../_library.ts";
import { libvirt, VIR_ERROR } from "./libvirt.ts";

/** libvirt's error fields, as `virGetLastError` gives them (plain data: it crosses Worker messages). */
export interface LibvirtErrorInfo {
  /** `virErrorNumber`, e.g. 42 (`VIR_ERR_NO_DOMAIN`); see `ErrorCode`. 0 when libvirt set no error. */
  readonly code: number;
  /** `virErrorDomain`: the part of libvirt that raised it, e.g. 10 (`VIR_FROM_DOM`). */
  readonly errorDomain: number;
  /** `virErrorLevel`: 1 warning, 2 error. */
  readonly level: number;
  /** libvirt's message, e.g. `"Domain not found: no domain with matching name 'x'"`. */
  readonly message: string;
}

/** What a failed call was doing, for the message: the call, its connection URI and domain. */
export interface LibvirtCallContext {
  /** The C function, e.g. `"virDomainLookupByName"`. */
  readonly call: string;
  /** What hakobu was doing, e.g. `Cannot look up domain "web1"`. */
  readonly what: string;
  /** The connection's URI, when there is one. */
  readonly uri?: string;
  /** The domain's name, when there is one. */
  readonly domainName?: string;
}

/**
 * A libvirt call failed. `message` reads
 * `<what> on "<uri>": <call> failed: <libvirt's message>`; the fields keep
 * each part.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ErrorCode, LibvirtConnection, LibvirtError } from "./mod.ts";
 *
 * using conn = LibvirtConnection.open("test:///default");
 * assert.throws(() => conn.lookupDomain("nosuch"), (e: unknown) => {
 *   assert.ok(e instanceof LibvirtError);
 *   assert.equal(e.call, "virDomainLookupByName");
 *   assert.equal(e.code, ErrorCode.NO_DOMAIN);
 *   assert.equal(e.uri, "test:///default");
 *   assert.match(e.libvirtMessage, /^Domain not found/); // the test driver's words
 *   return true;
 * });
 * ```
 */
export class LibvirtError extends FfiError {
  /** The C function that failed, e.g. `"virDomainMigrateToURI3"`. */
  readonly call: string;
  /** libvirt's `virErrorNumber` (see `ErrorCode`); 0 when libvirt set no error. */
  readonly code: number;
  /** libvirt's `virErrorDomain` (which part of libvirt raised it). */
  readonly errorDomain: number;
  /** libvirt's `virErrorLevel`. */
  readonly level: number;
  /** libvirt's own message. */
  readonly libvirtMessage: string;
  /** The connection URI the call was on, when known. */
  readonly uri: string | undefined;
  /** The domain the call was on, when known. */
  readonly domainName: string | undefined;
  /**
   * Builds the error from what the call was doing and libvirt's error.
   *
   * @param context The call, URI and domain.
   * @param info libvirt's error.
   * @param options `cause`.
   */
  constructor(
    context: LibvirtCallContext,
    info: LibvirtErrorInfo,
    options?: ErrorOptions,
  ) {
    const where = context.uri === undefined ? "" : ` on "${context.uri}"`;
    super(
      "libvirt",
      `${context.what}${where}: ${context.call} failed: ${info.message}`,
      options,
    );
    this.call = context.call;
    this.code = info.code;
    this.errorDomain = info.errorDomain;
    this.level = info.level;
    this.libvirtMessage = info.message;
    this.uri = context.uri;
    this.domainName = context.domainName;
  }
}

/**
 * The calling thread's last libvirt error (`virGetLastError`), as plain
 * data; code 0 and a message saying so when libvirt set none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libvirt, readLastError } from "./mod.ts";
 *
 * const conn = libvirt().virConnectOpen(new TextEncoder().encode("nosuchdriver:///\0"));
 * assert.equal(conn, null);
 * assert.ok(readLastError().code > 0); // e.g. 38: Failed to connect socket ...
 * ```
 */
export function readLastError(): LibvirtErrorInfo {
  const p = libvirt().virGetLastError();
  if (p === null) {
    return {
      code: 0,
      errorDomain: 0,
      level: 0,
      message: "libvirt reported no error",
    };
  }
  const v = new Deno.UnsafePointerView(p);
  const msg = v.getPointer(VIR_ERROR.message);
  return {
    code: v.getInt32(VIR_ERROR.code),
    errorDomain: v.getInt32(VIR_ERROR.domain),
    level: v.getInt32(VIR_ERROR.level),
    message: msg === null
      ? "libvirt gave no message"
      : Deno.UnsafePointerView.getCString(msg),
  };
}

/**
 * Reads this thread's last error now and builds the {@link LibvirtError} for
 * `context`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libvirtError, LibvirtError } from "./mod.ts";
 *
 * const e = libvirtError({ call: "virDomainAbortJob", what: "Cannot abort", uri: "test:///default" });
 * assert.ok(e instanceof LibvirtError);
 * assert.match(e.message, /^Cannot abort on "test:\/\/\/default": virDomainAbortJob failed: /);
 * ```
 */
export function libvirtError(context: LibvirtCallContext): LibvirtError {
  return new LibvirtError(context, readLastError());
}

/**
 * Turns a C result into a {@link LibvirtError}: a negative number or a NULL
 * pointer throws (reading libvirt's last error); anything else is returned.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LibvirtError, unwrap } from "./mod.ts";
 *
 * const ctx = { call: "virDomainCreate", what: `Cannot start domain "x"` };
 * assert.equal(unwrap(0, ctx), 0);
 * assert.throws(() => unwrap(-1, ctx), LibvirtError);
 * assert.throws(() => unwrap(null, ctx), LibvirtError);
 * ```
 * @throws {LibvirtError} when `rc` says failure.
 */
export function unwrap<T extends number | Deno.PointerValue>(
  rc: T,
  context: LibvirtCallContext,
): Exclude<T, null> {
  if (rc === null || (typeof rc === "number" && rc < 0)) {
    throw libvirtError(context);
  }
  return rc as Exclude<T, null>;
}
