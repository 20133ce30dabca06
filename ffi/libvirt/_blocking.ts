/**
 * Runs a libvirt call that can block for long (a whole migration, a
 * connection to a remote host) on a Worker's thread, so the JS event loop
 * keeps running, and brings back its result or libvirt's error.
 *
 * Why a Worker and not a `nonblocking: true` FFI call: libvirt keeps the
 * last error per thread (`virGetLastError` reads thread-local storage), and
 * a nonblocking call runs on a pool thread that JS cannot run code on
 * afterwards, so its error would be lost. The Worker makes the call
 * synchronously on its own thread and reads `virGetLastError` there, right
 * after the call, then posts the error's fields back as plain data.
 *
 * Pointers cross as addresses (bigints): a Worker shares the process's
 * memory and libvirt objects are thread-safe (the remote driver lets several
 * threads have calls in flight on one connection; virsh itself runs its
 * migration in a thread while the main one polls the job). So while the
 * Worker sits in `virDomainMigrateToURI3`, the main thread can call
 * `virDomainGetJobStats`, `virDomainMigrateSetMaxDowntime`,
 * `virDomainMigrateSetMaxSpeed` and `virDomainAbortJob` on the same
 * `virDomainPtr`. The caller holds a reference on that pointer
 * (`virDomainRef`) until the Worker answers.
 *
 * One Worker per call: its start-up (tens of ms) is nothing next to a
 * migration, and a Worker blocked in C cannot be reused or interrupted
 * anyway (to stop a migration, abort its job from the main thread).
 *
 * @module
 */

import {
  type LibvirtCallContext,
  LibvirtError,
  type LibvirtErrorInfo,
} from "./errors.ts";
import type { TypedParamInput } from "./typed_params.ts";

/** What the Worker is asked to do. */
export type BlockingRequest =
  | {
    readonly kind: "migrate";
    /** `virDomainPtr` address. */
    readonly dom: bigint;
    readonly dconnuri: string | null;
    readonly params: readonly TypedParamInput[];
    readonly flags: number;
  }
  | {
    readonly kind: "open";
    readonly uri: string;
    readonly readOnly: boolean;
  }
  /**
   * `virDomainAbortJob`: it can wait for the domain's job lock (libvirt
   * queues an abort behind a nested job of the migration), so it must not
   * block the event loop that polls the job.
   */
  | { readonly kind: "abortJob"; readonly dom: bigint }
  /** `virDomainMigrateSetMaxDowntime` (ms), for the same reason. */
  | {
    readonly kind: "setMaxDowntime";
    readonly dom: bigint;
    readonly ms: number;
  };

/** What the Worker answers. */
export type BlockingReply =
  /** The call succeeded: its int result, or a pointer's address. */
  | { readonly kind: "ok"; readonly value: number | bigint }
  /** The call failed: libvirt's error, read on the Worker's thread. */
  | { readonly kind: "libvirt-error"; readonly error: LibvirtErrorInfo }
  /** Something else failed (loading libvirt, encoding parameters, the Worker itself). */
  | { readonly kind: "error"; readonly message: string };

/** Runs `req` in a fresh Worker and resolves with its reply (never rejects). */
export function runBlocking(req: BlockingRequest): Promise<BlockingReply> {
  const worker = new Worker(new URL("./_worker.ts", import.meta.url).href, {
    type: "module",
  });
  return new Promise<BlockingReply>((resolve) => {
    worker.onmessage = (e: MessageEvent<BlockingReply>) => {
      worker.terminate();
      resolve(e.data);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      worker.terminate();
      resolve({ kind: "error", message: e.message });
    };
    worker.postMessage(req);
  });
}

/**
 * The value of a successful reply; a failed one as a {@link LibvirtError}
 * with `ctx` (libvirt's own error, or what else failed, as its message).
 */
export function replyValue(
  reply: BlockingReply,
  ctx: LibvirtCallContext,
): number | bigint {
  if (reply.kind === "libvirt-error") throw new LibvirtError(ctx, reply.error);
  if (reply.kind === "error") {
    throw new LibvirtError(ctx, {
      code: 0,
      errorDomain: 0,
      level: 2,
      message: reply.message,
    });
  }
  return reply.value;
}
