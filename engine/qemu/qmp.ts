/**
 * A QMP (QEMU Machine Protocol) client over a unix socket: capabilities
 * negotiation, commands with ids and timeouts, events as listeners or an
 * async iterator, and typed helpers for the migration commands.
 *
 * QMP is newline-delimited JSON. The server greets with `{"QMP": ...}`; the
 * client answers `qmp_capabilities`; then each `{"execute", "arguments", "id"}`
 * gets one `{"return"|"error", "id"}` back, and events (`{"event", "data",
 * "timestamp"}`) may arrive between them at any time.
 *
 * @example
 * ```ts
 * import { QmpClient } from "@hakobu/hakobu";
 *
 * // Needs a QEMU started with `-qmp unix:/tmp/vm.qmp,server=on,wait=off`: the
 * // doc tests type-check this function and do not call it.
 * async function migrateOut() {
 *   const qmp = await QmpClient.connect("/tmp/vm.qmp");
 *   console.log(await qmp.queryStatus()); // { status: "running", running: true }
 *   await qmp.setParameters({ "downtime-limit": 300 });
 *   await qmp.migrate("tcp:10.77.0.2:4444");
 *   await qmp.waitEvent("MIGRATION", {
 *     until: (e) => e.data?.status === "completed",
 *   });
 *   qmp.close();
 * }
 * ```
 *
 * @module
 */

import { HakobuError } from "../errors.ts";
import { writeAll } from "../transport/write_all.ts";

/** A QMP command failed, timed out, or the connection broke. */
export class QmpError extends HakobuError {
  /** The command that failed, when the failure belongs to one. */
  readonly command: string | undefined;
  /** QMP's error class, e.g. `"GenericError"`, when QEMU answered with an error. */
  readonly errorClass: string | undefined;
  /**
   * Creates the error, naming the command and QMP error class when known.
   *
   * @param message What went wrong and why.
   * @param detail The command and QMP error class, when known.
   * @param options Passed on to `Error` (e.g. `cause`).
   */
  constructor(
    message: string,
    detail: { command?: string; errorClass?: string } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.command = detail.command;
    this.errorClass = detail.errorClass;
  }
}

/** One QMP event, e.g. `MIGRATION` `{status: "active"}` or `MIGRATION_PASS` `{pass: 3}`. */
export interface QmpEvent {
  /** Event name, e.g. `"MIGRATION_PASS"`. */
  readonly event: string;
  /** Event payload (empty object when the event has none). */
  readonly data: Readonly<Record<string, unknown>>;
  /** Host time QEMU emitted the event, in milliseconds since the epoch. */
  readonly timeMs: number;
}

/** `query-status`. */
export interface QmpStatus {
  /** Run state, e.g. `"running"`, `"paused"`, `"postmigrate"`, `"inmigrate"`. */
  readonly status: string;
  /** True while the vCPUs run. */
  readonly running: boolean;
}

/** The `ram` part of `query-migrate` (fields QEMU omits are absent). */
export interface QmpMigrateRam {
  /** Bytes transferred to the destination so far. */
  readonly transferred: number;
  /** Bytes still to transfer. */
  readonly remaining: number;
  /** Guest RAM bytes involved in the migration. */
  readonly total: number;
  /** Zero pages seen (sent as ZERO records). */
  readonly duplicate: number;
  /** Pages sent whole. */
  readonly normal: number;
  /** Bytes of the pages sent whole. */
  readonly "normal-bytes": number;
  /** Pages the guest dirties per second. */
  readonly "dirty-pages-rate": number;
  /** Throughput, in megabits per second. */
  readonly mbps: number;
  /** Times the dirty bitmap was synchronised (about the pass count). */
  readonly "dirty-sync-count": number;
  /** Bytes per page of the page counters. */
  readonly "page-size": number;
  /** Bytes sent over multifd channels. */
  readonly "multifd-bytes"?: number;
  /** Pages transferred per second. */
  readonly "pages-per-second"?: number;
  /** Bytes sent in the pre-copy phase. */
  readonly "precopy-bytes"?: number;
  /** Bytes sent while the guest was paused. */
  readonly "downtime-bytes"?: number;
}

/** `query-migrate` (the fields hakobu reads; QEMU sends more). */
export interface QmpMigrationInfo {
  /** `none`, `setup`, `active`, `pre-switchover`, `device`, `completed`, `failed`, `cancelling`, `cancelled`, ... */
  readonly status?: string;
  /** Milliseconds since the migration started (its whole time once ended). */
  readonly "total-time"?: number;
  /** Milliseconds of setup before the first pass. */
  readonly "setup-time"?: number;
  /** While active: the downtime QEMU expects, in ms. */
  readonly "expected-downtime"?: number;
  /** Once completed: the guest's downtime, in ms. */
  readonly downtime?: number;
  /** Percent of time auto-converge throttles the vCPUs. */
  readonly "cpu-throttle-percentage"?: number;
  /** Why the migration failed, when `status` is `failed`. */
  readonly "error-desc"?: string;
  /** RAM counters (while active and once completed). */
  readonly ram?: QmpMigrateRam;
  /** XBZRLE cache counters, when XBZRLE is on. */
  readonly "xbzrle-cache"?: Readonly<Record<string, number>>;
}

/** Migration parameters hakobu sets (`migrate-set-parameters`); any other is passed through. */
export interface QmpMigrationParameters {
  /** Milliseconds of downtime QEMU may take at switchover (default 300). */
  readonly "downtime-limit"?: number;
  /** Bytes per second (default 128 MiB/s). */
  readonly "max-bandwidth"?: number;
  /** Parallel multifd channels (QEMU default 2). */
  readonly "multifd-channels"?: number;
  /** Compression of multifd pages (QEMU default `none`). */
  readonly "multifd-compression"?: "none" | "zlib" | "zstd" | string;
  /** zstd level for multifd, 0..20 (QEMU default 1). */
  readonly "multifd-zstd-level"?: number;
  /** Bytes; a power of two and a multiple of the page size. */
  readonly "xbzrle-cache-size"?: number;
  /** Percent throttle when auto-converge starts (QEMU default 20). */
  readonly "cpu-throttle-initial"?: number;
  /**
   * Percent added each time auto-converge sees no progress (QEMU default 10).
   */
  readonly "cpu-throttle-increment"?: number;
  /** Any other parameter, passed to QEMU as given. */
  readonly [name: string]: unknown;
}

/** Options of {@link QmpClient.connect}. */
export interface QmpConnectOptions {
  /** Give up connecting (and negotiating) after this many milliseconds (default 10000). */
  readonly timeoutMs?: number;
  /** Default timeout of each command in milliseconds (default 30000). */
  readonly commandTimeoutMs?: number;
}

interface Pending {
  readonly command: string;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

type Listener = (e: QmpEvent) => void;

/**
 * A connected, negotiated QMP session.
 *
 * @example
 * ```ts
 * import { QmpClient } from "@hakobu/hakobu";
 *
 * // Needs a running QEMU (see the module example): type-checked, not run.
 * async function pause() {
 *   const qmp = await QmpClient.connect("/tmp/vm.qmp");
 *   const off = qmp.on(
 *     "MIGRATION_PASS",
 *     (e) => console.log("pass", e.data?.pass),
 *   );
 *   await qmp.execute("stop");
 *   off();
 *   qmp.close();
 * }
 * ```
 */
export class QmpClient {
  #conn: Deno.UnixConn;
  #nextId = 1;
  #pending = new Map<string, Pending>();
  #listeners = new Set<Listener>();
  #commandTimeoutMs: number;
  #closedError: QmpError | null = null;
  #closed: Promise<void>;
  /** QEMU's version from the greeting, e.g. `"7.2.0"`. */
  readonly version: string;

  private constructor(
    conn: Deno.UnixConn,
    version: string,
    commandTimeoutMs: number,
    rest: Uint8Array,
  ) {
    this.#conn = conn;
    this.version = version;
    this.#commandTimeoutMs = commandTimeoutMs;
    this.#closed = this.#readLoop(rest);
  }

  /**
   * Connects to a QMP unix socket, retrying while QEMU creates it, and
   * negotiates capabilities.
   *
   * @throws {QmpError} when the socket does not answer within `timeoutMs`.
   */
  static async connect(
    path: string,
    options: QmpConnectOptions = {},
  ): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    let conn: Deno.UnixConn | null = null;
    let lastError: unknown = null;
    while (conn === null) {
      try {
        conn = await Deno.connect({ transport: "unix", path });
      } catch (e) {
        lastError = e;
        if (Date.now() > deadline) {
          throw new QmpError(
            `Cannot connect to QMP socket "${path}": ${errorText(lastError)}`,
          );
        }
        await sleep(50);
      }
    }
    const reader = new LineReader(conn);
    const greetingLine = await withTimeout(
      reader.next(),
      deadline - Date.now(),
      () => conn.close(),
    ).catch((e) => {
      throw new QmpError(
        `No QMP greeting on "${path}": ${errorText(e)}`,
      );
    });
    if (greetingLine === null) {
      throw new QmpError(`No QMP greeting on "${path}": connection closed`);
    }
    const greeting = JSON.parse(greetingLine) as {
      QMP?: { version?: { qemu?: Record<string, number> } };
    };
    if (!greeting.QMP) {
      conn.close();
      throw new QmpError(
        `Unexpected QMP greeting on "${path}": ${greetingLine.slice(0, 200)}`,
      );
    }
    const q = greeting.QMP.version?.qemu ?? {};
    const version = `${q.major ?? 0}.${q.minor ?? 0}.${q.micro ?? 0}`;
    const client = new QmpClient(
      conn,
      version,
      options.commandTimeoutMs ?? 30_000,
      reader.rest(),
    );
    await client.execute("qmp_capabilities", undefined, {
      timeoutMs: Math.max(1000, deadline - Date.now()),
    });
    return client;
  }

  /** Resolves when the connection has closed (QEMU quit, or {@link close}). */
  get closed(): Promise<void> {
    return this.#closed;
  }

  /** True once the connection has closed. */
  get isClosed(): boolean {
    return this.#closedError !== null;
  }

  /**
   * Runs one QMP command and resolves with its `return` value.
   *
   * @throws {QmpError} with QEMU's `error.desc` when the command fails, on
   * timeout, or when the connection closes first.
   */
  execute<T = unknown>(
    command: string,
    args?: Readonly<Record<string, unknown>>,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    const id = `hkb-${this.#nextId++}`;
    const msg: Record<string, unknown> = { execute: command, id };
    if (args !== undefined) msg.arguments = args;
    const timeoutMs = options.timeoutMs ?? this.#commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new QmpError(
            `QMP command "${command}" timed out after ${timeoutMs} ms`,
            { command },
          ),
        );
      }, timeoutMs);
      this.#pending.set(id, {
        command,
        resolve: resolve as (v: unknown) => void,
        reject,
        timer,
      });
      const bytes = new TextEncoder().encode(JSON.stringify(msg) + "\n");
      writeAll(this.#conn, bytes).catch((e) => {
        const p = this.#pending.get(id);
        if (!p) return;
        clearTimeout(p.timer);
        this.#pending.delete(id);
        reject(
          new QmpError(
            `Cannot send QMP command "${command}": ${errorText(e)}`,
            {
              command,
            },
          ),
        );
      });
    });
  }

  /**
   * Calls `listener` for every event named `name` (or every event for `"*"`).
   * Returns a function that removes the listener.
   */
  on(name: string, listener: (e: QmpEvent) => void): () => void {
    const l: Listener = (e) => {
      if (name === "*" || e.event === name) listener(e);
    };
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  /**
   * Every event from now until the connection closes or `signal` aborts.
   *
   * @example
   * ```ts
   * import { QmpClient } from "@hakobu/hakobu";
   *
   * // Needs a running QEMU (see the module example): type-checked, not run.
   * async function untilStopped(qmp: QmpClient) {
   *   for await (const e of qmp.events()) if (e.event === "STOP") break;
   * }
   * ```
   */
  async *events(signal?: AbortSignal): AsyncGenerator<QmpEvent> {
    const queue: QmpEvent[] = [];
    let wake: (() => void) | null = null;
    const off = this.on("*", (e) => {
      queue.push(e);
      wake?.();
    });
    const onAbort = () => wake?.();
    signal?.addEventListener("abort", onAbort);
    const closed = this.#closed.then(() => wake?.());
    try {
      while (true) {
        while (queue.length > 0) yield queue.shift()!;
        if (this.#closedError || signal?.aborted) return;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    } finally {
      off();
      signal?.removeEventListener("abort", onAbort);
      void closed;
    }
  }

  /**
   * Resolves with the next event named `name` for which `until` holds.
   *
   * @throws {QmpError} on timeout or when the connection closes first.
   */
  waitEvent(
    name: string,
    options: { until?: (e: QmpEvent) => boolean; timeoutMs?: number } = {},
  ): Promise<QmpEvent> {
    const timeoutMs = options.timeoutMs ?? this.#commandTimeoutMs;
    return new Promise<QmpEvent>((resolve, reject) => {
      const off = this.on(name, (e) => {
        if (options.until && !options.until(e)) return;
        done();
        resolve(e);
      });
      const timer = setTimeout(() => {
        done();
        reject(
          new QmpError(`No QMP event "${name}" within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.#closed.then(() => {
        done();
        reject(
          new QmpError(
            `QMP connection closed while waiting for event "${name}"`,
          ),
        );
      });
      function done() {
        off();
        clearTimeout(timer);
      }
    });
  }

  /** Closes the connection; pending commands fail with a {@link QmpError}. */
  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  // --- helpers -------------------------------------------------------------

  /**
   * `migrate-set-capabilities`, e.g. `{ xbzrle: true, events: true }`.
   */
  setCapabilities(caps: Readonly<Record<string, boolean>>): Promise<void> {
    return this.execute("migrate-set-capabilities", {
      capabilities: Object.entries(caps).map(([capability, state]) => ({
        capability,
        state,
      })),
    });
  }

  /** `migrate-set-parameters`, e.g. `{ "downtime-limit": 300, "max-bandwidth": 125e6 }`. */
  setParameters(params: QmpMigrationParameters): Promise<void> {
    return this.execute("migrate-set-parameters", params);
  }

  /** `query-migrate-parameters`. */
  queryParameters(): Promise<Record<string, unknown>> {
    return this.execute("query-migrate-parameters");
  }

  /** `migrate` to a URI: `tcp:HOST:PORT`, `unix:PATH`, `exec:CMD`. Returns once started. */
  migrate(uri: string): Promise<void> {
    return this.execute("migrate", { uri });
  }

  /** `migrate-incoming` on a QEMU started with `-incoming defer`. */
  migrateIncoming(uri: string): Promise<void> {
    return this.execute("migrate-incoming", { uri });
  }

  /** `query-migrate`. */
  queryMigrate(): Promise<QmpMigrationInfo> {
    return this.execute("query-migrate");
  }

  /** `migrate_cancel`. */
  cancel(): Promise<void> {
    return this.execute("migrate_cancel");
  }

  /** `query-status`. */
  queryStatus(): Promise<QmpStatus> {
    return this.execute("query-status");
  }

  /** `quit`: QEMU exits; resolves once it answered (or closed the socket). */
  async quit(): Promise<void> {
    try {
      await this.execute("quit", undefined, { timeoutMs: 5000 });
    } catch (e) {
      if (!(e instanceof QmpError && /closed/.test(e.message))) throw e;
    }
  }

  async #readLoop(rest: Uint8Array): Promise<void> {
    const reader = new LineReader(this.#conn, rest);
    let why = "QMP connection closed";
    try {
      while (true) {
        const line = await reader.next();
        if (line === null) break;
        if (line.trim() === "") continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line);
        } catch {
          continue; // QMP never sends a partial object; ignore noise
        }
        this.#dispatch(msg);
      }
    } catch (e) {
      why = `QMP connection closed: ${errorText(e)}`;
    }
    this.#closedError = new QmpError(why);
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(
        new QmpError(`${why} before "${p.command}" answered`, {
          command: p.command,
        }),
      );
    }
    this.#pending.clear();
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  #dispatch(msg: Record<string, unknown>): void {
    if (typeof msg.event === "string") {
      const ts = msg.timestamp as
        | { seconds: number; microseconds: number }
        | undefined;
      const e: QmpEvent = {
        event: msg.event,
        data: (msg.data ?? {}) as Record<string, unknown>,
        timeMs: ts ? ts.seconds * 1000 + ts.microseconds / 1000 : Date.now(),
      };
      for (const l of [...this.#listeners]) {
        try {
          l(e);
        } catch { /* a listener's bug must not break the session */ }
      }
      return;
    }
    const id = typeof msg.id === "string" ? msg.id : undefined;
    if (id === undefined) return;
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if ("error" in msg) {
      const err = msg.error as { class?: string; desc?: string };
      p.reject(
        new QmpError(
          `QMP command "${p.command}" failed: ${err.desc ?? "no description"}`,
          { command: p.command, errorClass: err.class },
        ),
      );
    } else {
      p.resolve(msg.return);
    }
  }
}

class LineReader {
  #conn: Deno.Conn;
  #buf: Uint8Array;
  #len: number;
  #chunk = new Uint8Array(65536);
  #decoder = new TextDecoder();

  constructor(conn: Deno.Conn, initial: Uint8Array = new Uint8Array(0)) {
    this.#conn = conn;
    this.#buf = new Uint8Array(Math.max(65536, initial.length * 2));
    this.#buf.set(initial);
    this.#len = initial.length;
  }

  /** The next line without its newline, or null at end of stream. */
  async next(): Promise<string | null> {
    while (true) {
      const nl = this.#buf.subarray(0, this.#len).indexOf(10);
      if (nl >= 0) {
        const line = this.#decoder.decode(this.#buf.subarray(0, nl));
        this.#buf.copyWithin(0, nl + 1, this.#len);
        this.#len -= nl + 1;
        return line;
      }
      const n = await this.#conn.read(this.#chunk);
      if (n === null) return null;
      if (this.#len + n > this.#buf.length) {
        const bigger = new Uint8Array((this.#len + n) * 2);
        bigger.set(this.#buf.subarray(0, this.#len));
        this.#buf = bigger;
      }
      this.#buf.set(this.#chunk.subarray(0, n), this.#len);
      this.#len += n;
    }
  }

  /** Bytes read past the last line returned. */
  rest(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  onTimeout: () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      onTimeout();
      reject(new Error(`timed out after ${Math.max(0, ms)} ms`));
    }, Math.max(0, ms));
    p.then((v) => {
      clearTimeout(t);
      resolve(v);
    }, (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
