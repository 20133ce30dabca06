/**
 * What every backend is: where a VM lives (`sim`, `qemu`, `xen`, …), named by
 * a source string `SCHEME:REST`, and one way to migrate it under a plan to
 * a target, ending in the same {@link MigrationReport} whatever the
 * hypervisor. The registry (`registry.ts`) turns a source string into a
 * {@link Backend}; each backend asks its plan through the steering helper
 * (`../steering.ts`).
 *
 * @module
 */

import { HakobuError, type HakobuErrorOptions } from "../errors.ts";
import type { Plan } from "../plan.ts";
import type { MigrationProgress } from "../precopy.ts";
import type { MigrationReport, RoundReport } from "../report.ts";
import type { SecurityFlags } from "../transport/secure/security.ts";

/** A source or target string that names no backend, or that its backend cannot use. */
export class BackendError extends HakobuError {
  /**
   * Creates the error.
   *
   * @param message What was wrong, the value in quotes, and the forms accepted.
   * @param options `field`: `"source"` or `"target"`; `cause`.
   */
  constructor(message: string, options?: HakobuErrorOptions) {
    super(message, options);
  }
}

/** Options of {@link Backend.migrate}, the same for every backend. */
export interface BackendMigrateOptions {
  /**
   * How hakobu's own link authenticates and encrypts (TLS credentials, or
   * plain TCP asked for by name), where the migration crosses one: a
   * hakobu receiver, or hakobu's stream tunnel. A backend that needs it and
   * does not get it fails before touching the VM.
   */
  readonly security?: SecurityFlags;
  /**
   * Aborts the migration: the source VM runs on. Where a hypervisor copies
   * the last pages with the VM paused, that stop-and-copy runs to its end.
   */
  readonly signal?: AbortSignal;
  /** Called during the migration with the round under way (the feed of `ProgressView`). */
  readonly onProgress?: (progress: MigrationProgress) => void;
  /** Called with each round once it is over (the stop-and-copy round last). */
  readonly onRound?: (round: RoundReport) => void;
  /** Progress lines for people (default: none). */
  readonly log?: (line: string) => void;
}

/**
 * One VM, reached through its backend. Made by a {@link BackendFactory}
 * (through `openBackend("SCHEME:REST")`), which only parses: nothing is
 * touched before {@link migrate}.
 *
 * `migrate` resolves with the report when the hypervisor has told how the
 * migration ended (a backend whose hypervisor reports a cancelled or failed
 * migration in full, as QEMU does, resolves with `aborted` or a failed
 * `outcome`; `migrationStatus(report)` says which); it rejects with a
 * `MigrationError` (or a subclass, e.g. `XenMigrateError`) when the plan or
 * the signal aborted it, or when control was lost; the source runs on unless
 * the error says otherwise.
 */
export interface Backend {
  /** The scheme of the source string: `"sim"`, `"qemu"`, `"xen"`, … */
  readonly scheme: string;
  /** The source string this backend was opened with, e.g. `"qemu:/run/src.qmp"`. */
  readonly source: string;
  /** What the target of {@link migrate} may be, in words (for help and errors). */
  readonly targetForm: string;
  /**
   * Migrates the VM under `plan` to `target` (its form: {@link targetForm}).
   *
   * @throws {BackendError} (as a rejection) when `target` does not parse,
   *   before anything is touched.
   */
  migrate(
    plan: Plan,
    target: string,
    options?: BackendMigrateOptions,
  ): Promise<MigrationReport>;
}

/** Options of {@link BackendFactory.open}: what some backends need to make their VM. */
export interface BackendOpenOptions {
  /** `sim`: memory of the VM it creates, bytes (default 1 GiB). */
  readonly memoryBytes?: number;
  /** `sim`: seed of the workload (default 1). */
  readonly seed?: number;
  /** `sim`: overrides the workload's dirty rate, pages per second. */
  readonly dirtyRate?: number;
  /** `xen`: live pre-copy (default true); false suspends first and copies once. */
  readonly live?: boolean;
  /**
   * `sim`: offer per-channel connections (`MigrateOptions.channelConnections`):
   * each channel's Worker opens, writes and encrypts a connection of its
   * own to the receiver. Default false: every channel in one connection.
   */
  readonly channelConnections?: boolean;
  /**
   * `libvirt`: put hakobu's stream tunnel in the migration (libvirt's
   * `migrate_uri` points at the tunnel, which feeds the destination's
   * `listen_address`): the plan's codecs on the link and the stream
   * verified. Default false: libvirt's own transport.
   */
  readonly tunnel?: boolean;
  /**
   * `libvirt`, two real hosts: the tunnel's receiving end already runs on
   * the destination host (`tunnel.ts qemu receive --listen AT --to-qemu
   * LISTEN_ADDRESS:MIGRATION_PORT --return-path`); only the sending end
   * starts here. Implies `tunnel`.
   */
  readonly tunnelReceiver?: RemoteTunnelReceiver;
}

/** Where the receiving end of a libvirt migration's tunnel runs on the destination host. */
export interface RemoteTunnelReceiver {
  /** Its `--listen`, `HOST:PORT`, as this host reaches it. */
  readonly at: string;
  /** The destination QEMU's migration port, the port of its `--to-qemu`. */
  readonly migrationPort: number;
  /** libvirt's `listen_address` for the destination QEMU, the host of its `--to-qemu` (e.g. `127.0.0.1`: the destination's loopback). */
  readonly listenAddress: string;
}

/**
 * A kind of backend, as the registry lists it: its scheme, the forms its
 * source and target take, and how to open a source of its scheme.
 */
export interface BackendFactory {
  /** The scheme before the colon, e.g. `"qemu"`. */
  readonly scheme: string;
  /** The source form, e.g. `"qemu:QMP_SOCKET"`. */
  readonly sourceForm: string;
  /** The target forms, in words. */
  readonly targetForm: string;
  /** One sentence: what this backend migrates, and how. */
  readonly description: string;
  /**
   * Opens the source `SCHEME:rest`: parses `rest` and checks what can be
   * checked without touching anything.
   *
   * @throws {BackendError} naming `rest` and the form expected.
   */
  open(rest: string, options?: BackendOpenOptions): Backend;
}
