/**
 * The Worker behind `_blocking.ts`: makes one blocking libvirt call on its
 * own thread and posts back the result, or libvirt's error read here with
 * `virGetLastError` (thread-local: only this thread can read it).
 *
 * Messages in: a `BlockingRequest`; out: one `BlockingReply`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import type { BlockingReply, BlockingRequest } from "./_blocking.ts";
import { readLastError } from "./errors.ts";
import { libvirt } from "./libvirt.ts";
import { encodeTypedParams } from "./typed_params.ts";

function cstr(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0");
}

function handle(req: BlockingRequest): BlockingReply {
  const lib = libvirt();
  switch (req.kind) {
    case "migrate": {
      const dom = Deno.UnsafePointer.create(req.dom);
      const enc = encodeTypedParams(req.params);
      const rc = lib.virDomainMigrateToURI3(
        dom,
        req.dconnuri === null ? null : cstr(req.dconnuri),
        enc.count === 0 ? null : enc.bytes,
        enc.count,
        req.flags,
      );
      // enc (and its strings) stayed referenced through the call above.
      void enc.strings;
      return rc < 0
        ? { kind: "libvirt-error", error: readLastError() }
        : { kind: "ok", value: rc };
    }
    case "abortJob": {
      const rc = lib.virDomainAbortJob(Deno.UnsafePointer.create(req.dom));
      return rc < 0
        ? { kind: "libvirt-error", error: readLastError() }
        : { kind: "ok", value: rc };
    }
    case "setMaxDowntime": {
      const rc = lib.virDomainMigrateSetMaxDowntime(
        Deno.UnsafePointer.create(req.dom),
        BigInt(req.ms),
        0,
      );
      return rc < 0
        ? { kind: "libvirt-error", error: readLastError() }
        : { kind: "ok", value: rc };
    }
    case "open": {
      const open = req.readOnly
        ? lib.virConnectOpenReadOnly
        : lib.virConnectOpen;
      const conn = open(cstr(req.uri));
      return conn === null
        ? { kind: "libvirt-error", error: readLastError() }
        : { kind: "ok", value: BigInt(Deno.UnsafePointer.value(conn)) };
    }
  }
}

self.onmessage = (e: MessageEvent<BlockingRequest>) => {
  let reply: BlockingReply;
  try {
    reply = handle(e.data);
  } catch (err) {
    reply = {
      kind: "error",
      message: err instanceof Error ? err.message : String(err),
    };
  }
  self.postMessage(reply);
};
