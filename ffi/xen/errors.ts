/**
 * {@link XenError}: a Xen library call failed, with the call's name and the
 * errno text, and {@link unwrap}, the one place that turns a C return code
 * into that error.
 *
 * @module
 */

import { FfiError } from "../_library.ts";
import { errno, errnoText } from "./_libc.ts";

/**
 * A call into libxenctrl, libxenforeignmemory, libxenstore or libxenguest
 * failed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { openXenctrl, XenError } from "./mod.ts";
 *
 * try {
 *   openXenctrl().close(); // on a dom0, as root
 * } catch (e) {
 *   if (e instanceof XenError) {
 *     // off a dom0: "Not a Xen dom0: cannot open /dev/xen/privcmd (...)"
 *     assert.equal(e.call, "xc_interface_open");
 *     assert.equal(e.errnoText.length > 0, true);
 *   } else {
 *     assert.ok(e instanceof FfiError); // libxen is not installed
 *   }
 * }
 * ```
 */
export class XenError extends FfiError {
  /** The C function that failed, e.g. `"xc_interface_open"`. */
  readonly call: string;
  /** `errno` after the call (0 when the call does not set it). */
  readonly errno: number;
  /** `strerror(errno)`, e.g. `"No such file or directory"`. */
  readonly errnoText: string;
  /**
   * @param library The library, e.g. `"libxenctrl"`.
   * @param call The C function that failed.
   * @param message The whole message.
   * @param code `errno` after the call.
   */
  constructor(
    library: string,
    call: string,
    message: string,
    code: number,
    options?: ErrorOptions,
  ) {
    super(library, message, options);
    this.call = call;
    this.errno = code;
    this.errnoText = code === 0 ? "" : errnoText(code);
  }
}

/** The fix appended to every "not a dom0" message. */
export const DOM0_FIX = "run hakobu on a Xen dom0 as root";

/**
 * Reads errno now and builds a {@link XenError} for `call`:
 * `"<what>: <call> failed (<errno text>)"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { XenError, xenError } from "./mod.ts";
 *
 * const e = xenError(
 *   "libxenctrl",
 *   "xc_domain_pause",
 *   `Cannot pause domain "7"`,
 * );
 * assert.ok(e instanceof XenError);
 * assert.equal(e.call, "xc_domain_pause");
 * assert.match(
 *   e.message,
 *   /^Cannot pause domain "7": xc_domain_pause failed \(/,
 * );
 * ```
 */
export function xenError(
  library: string,
  call: string,
  what: string,
): XenError {
  const code = errno();
  const text = code === 0 ? "no errno" : errnoText(code);
  return new XenError(library, call, `${what}: ${call} failed (${text})`, code);
}

/**
 * Turns a C return code into a {@link XenError}: a negative number (or
 * bigint, or `false` for libxenstore's `bool`) throws, naming the call and
 * errno's text; anything else is returned.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { unwrap, XenError } from "./mod.ts";
 *
 * const where = {
 *   library: "libxenctrl",
 *   call: "xc_domain_pause",
 *   what: `Cannot pause domain "7"`,
 * };
 * assert.equal(unwrap(0, where), 0); // success: the value, as it came
 * assert.throws(() => unwrap(-1, where), XenError); // negative: failure
 * assert.throws(() => unwrap(false, where), XenError); // libxenstore's bool
 * ```
 *
 * @throws {XenError} when `rc` says failure.
 */
export function unwrap<T extends number | bigint | boolean>(
  rc: T,
  where: { library: string; call: string; what: string },
): T {
  if (
    rc === false || (typeof rc !== "boolean" && (rc as number | bigint) < 0)
  ) {
    throw xenError(where.library, where.call, where.what);
  }
  return rc;
}
