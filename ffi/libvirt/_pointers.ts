/**
 * Readers of the pointers libvirt hands back: a domain's name and UUID, and
 * a stats record list (read, then freed).
 *
 * @module
 */

import { type DomainStats, domainStats } from "./domain_stats.ts";
import {
  libvirt,
  VIR_DOMAIN_STATS_RECORD,
  VIR_UUID_STRING_BUFLEN,
} from "./libvirt.ts";
import { decodeTypedParams } from "./typed_params.ts";

/** The UUID string of a `virDomainPtr`. */
export function domainUuid(dom: Deno.PointerObject): string {
  const buf = new Uint8Array(VIR_UUID_STRING_BUFLEN);
  if (libvirt().virDomainGetUUIDString(dom, buf) < 0) return "";
  return new TextDecoder().decode(buf.subarray(0, buf.indexOf(0)));
}

/** The name of a `virDomainPtr`. */
export function domainName(dom: Deno.PointerObject): string {
  const p = libvirt().virDomainGetName(dom);
  return p === null ? "" : Deno.UnsafePointerView.getCString(p);
}

/**
 * Reads a NULL-terminated `virDomainStatsRecordPtr` array and frees it
 * (`virDomainStatsRecordListFree`).
 */
export function takeStatsRecords(list: Deno.PointerObject): DomainStats[] {
  const out: DomainStats[] = [];
  try {
    const v = new Deno.UnsafePointerView(list);
    for (let i = 0;; i++) {
      const rec = v.getPointer(i * 8);
      if (rec === null) break;
      const r = new Deno.UnsafePointerView(rec);
      const dom = r.getPointer(VIR_DOMAIN_STATS_RECORD.dom);
      const params = decodeTypedParams(
        r.getPointer(VIR_DOMAIN_STATS_RECORD.params),
        r.getInt32(VIR_DOMAIN_STATS_RECORD.nparams),
      );
      out.push(
        domainStats(
          dom === null ? "" : domainName(dom),
          dom === null ? "" : domainUuid(dom),
          params,
        ),
      );
    }
  } finally {
    libvirt().virDomainStatsRecordListFree(list);
  }
  return out;
}
