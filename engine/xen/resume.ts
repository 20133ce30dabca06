/**
 * Resuming a domain whose save was cancelled, as `libxl_domain_resume(ctx,
 * domid, suspend_cancel = 1)` does for a PV or PVH guest: the cooperative
 * `xc_domain_resume` (the guest's suspend hypercall returns "cancelled", it
 * reconnects nothing and runs on) and `xs_resume_domain` (xenstored forgets
 * the shutdown).
 *
 * @module
 */

import { openXenctrl, ShutdownReason } from "../../ffi/xen/xenctrl.ts";
import { xenguest } from "../../ffi/xen/xenguest.ts";
import { openXenstore } from "../../ffi/xen/xenstore.ts";
import { XenError } from "../../ffi/xen/errors.ts";

/**
 * Resumes `domid` if it sits suspended (shut down with reason suspend).
 *
 * @example
 * ```ts
 * import { resumeSuspendedDomain } from "@hakobu/hakobu";
 *
 * // Needs a Xen dom0 and would resume a real domain: the doc tests type-check
 * // this function and do not call it.
 * function resumeAfterFailedSave(domid: number) {
 *   if (resumeSuspendedDomain(domid)) {
 *     console.log(`domain ${domid} runs again`);
 *   }
 * }
 * ```
 * @returns Whether it was suspended (and now runs); false when it was not.
 * @throws {XenError} off a dom0 or when a call fails.
 */
export function resumeSuspendedDomain(domid: number): boolean {
  const xc = openXenctrl();
  try {
    const info = xc.domainInfo(domid);
    if (!info.shutdown || info.shutdownReason !== ShutdownReason.suspend) {
      return false;
    }
    const rc = xenguest().xc_domain_resume(xc.handle, domid, 1);
    if (rc !== 0) {
      throw new XenError(
        "libxenguest",
        "xc_domain_resume",
        `Cannot resume domain "${domid}": xc_domain_resume returned ${rc}`,
        0,
      );
    }
    const xs = openXenstore();
    try {
      xs.resumeDomain(domid);
    } finally {
      xs.close();
    }
    return true;
  } finally {
    xc.close();
  }
}
