/**
 * Test helper: boots a throw-away QEMU (TCG) and captures its migration
 * stream with `migrate "exec:cat > FILE"`, through a tiny inline QMP client.
 * Not part of the API: the QMP client proper lives in `engine/qemu/qmp.ts`.
 *
 * @module
 */

/** Path of `qemu-system-x86_64`, or `null` when it is not installed. */
export function qemuBinary(): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin").split(":")) {
    const p = `${dir}/qemu-system-x86_64`;
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* not here */ }
  }
  return null;
}

/** A kernel image from linux-image-cloud-amd64, or `null`. */
export function cloudKernel(): string | null {
  try {
    for (const e of Deno.readDirSync("/boot")) {
      if (e.name.startsWith("vmlinuz-")) return `/boot/${e.name}`;
    }
  } catch { /* no /boot */ }
  return null;
}

/** Builds a busybox initramfs whose /init runs `script`, then prints `HAKOBU-READY` and sleeps. */
export async function buildInitramfs(
  dir: string,
  script: string,
): Promise<string> {
  const root = `${dir}/root`;
  await Deno.mkdir(`${root}/bin`, { recursive: true });
  await Deno.copyFile("/bin/busybox", `${root}/bin/busybox`);
  await Deno.writeTextFile(
    `${root}/init`,
    `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
${script}
echo HAKOBU-READY > /dev/ttyS0
while true; do sleep 1; done
`,
    { mode: 0o755 },
  );
  const out = `${dir}/initramfs.cpio`;
  const cmd = new Deno.Command("sh", {
    args: ["-c", `cd ${root} && find . | cpio -o -H newc --quiet > ${out}`],
  });
  const r = await cmd.output();
  if (!r.success) {
    throw new Error(`cpio failed: ${new TextDecoder().decode(r.stderr)}`);
  }
  return out;
}

/** A minimal QMP client over a unix socket: one command at a time. */
export class MiniQmp {
  #conn: Deno.UnixConn;
  #buf = "";
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #dec = new TextDecoder();

  private constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
    this.#reader = conn.readable.getReader();
  }

  /** Connects (retrying while QEMU starts) and negotiates capabilities. */
  static async connect(path: string, timeoutMs = 10_000): Promise<MiniQmp> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        const conn = await Deno.connect({ transport: "unix", path });
        const q = new MiniQmp(conn);
        await q.#line(); // greeting
        await q.execute("qmp_capabilities");
        return q;
      } catch (e) {
        if (Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async #line(): Promise<Record<string, unknown>> {
    for (;;) {
      const nl = this.#buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        if (line.trim()) return JSON.parse(line);
        continue;
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("QMP connection closed");
      this.#buf += this.#dec.decode(value, { stream: true });
    }
  }

  /** Runs a command; returns its `return` value or throws its error. */
  async execute(
    command: string,
    args?: Record<string, unknown>,
  ): Promise<unknown> {
    const msg = JSON.stringify(
      args ? { execute: command, arguments: args } : { execute: command },
    );
    await this.#conn.write(new TextEncoder().encode(msg + "\n"));
    for (;;) {
      const r = await this.#line();
      if ("return" in r) return r.return;
      if ("error" in r) {
        throw new Error(`QMP ${command}: ${JSON.stringify(r.error)}`);
      }
    }
  }

  /** Polls `query-migrate` until completed or failed; returns the final status. */
  async waitMigration(timeoutMs = 60_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.execute("query-migrate") as { status?: string };
      if (
        r.status === "completed" || r.status === "failed" ||
        r.status === "cancelled"
      ) {
        return r.status;
      }
      if (Date.now() > until) return r.status ?? "none";
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}

/** Options of {@link startQemu}. */
export interface QemuVmOptions {
  /** Guest memory in MiB (default 64). */
  readonly memMiB?: number;
  /** Boot this kernel + initramfs; firmware only when absent. */
  readonly kernel?: string;
  readonly initrd?: string;
  /** Extra arguments, e.g. `["-incoming", "defer"]`. */
  readonly extra?: readonly string[];
  /** Start paused (`-S`). */
  readonly paused?: boolean;
}

/** A running QEMU with its QMP socket and serial log. */
export interface QemuVm {
  readonly qmp: MiniQmp;
  readonly serialLog: string;
  readonly child: Deno.ChildProcess;
  stop(): Promise<void>;
}

/** Starts QEMU (TCG, pc machine, no devices) with QMP on a socket under `dir`. */
export async function startQemu(
  dir: string,
  name: string,
  o: QemuVmOptions = {},
): Promise<QemuVm> {
  const sock = `${dir}/${name}.qmp`;
  const serialLog = `${dir}/${name}.serial`;
  const args = [
    "-machine",
    "pc",
    "-accel",
    "tcg",
    "-m",
    String(o.memMiB ?? 64),
    "-nographic",
    "-nodefaults",
    "-serial",
    `file:${serialLog}`,
    "-qmp",
    `unix:${sock},server=on,wait=off`,
  ];
  if (o.kernel) {
    args.push(
      "-cpu",
      "max",
      "-kernel",
      o.kernel,
      "-append",
      "console=ttyS0 quiet panic=-1",
    );
    if (o.initrd) args.push("-initrd", o.initrd);
  }
  if (o.paused) args.push("-S");
  args.push(...(o.extra ?? []));
  const child = new Deno.Command(qemuBinary() ?? "qemu-system-x86_64", {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const qmp = await MiniQmp.connect(sock);
  return {
    qmp,
    serialLog,
    child,
    async stop() {
      try {
        await qmp.execute("quit");
      } catch { /* gone */ }
      qmp.close();
      try {
        await child.stderr.cancel();
      } catch { /* closed */ }
      await child.status;
    },
  };
}

/** Waits until the guest's serial log contains `HAKOBU-READY`. */
export async function waitReady(
  serialLog: string,
  timeoutMs = 120_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      if ((await Deno.readTextFile(serialLog)).includes("HAKOBU-READY")) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`Guest did not print HAKOBU-READY within ${timeoutMs} ms`);
}

/**
 * Captures the migration stream of a VM: a firmware-only one (paused at
 * reset) when `script` is absent, else a guest running `script`.
 */
export async function captureStream(
  options: { script?: string; memMiB?: number } = {},
): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "hakobu-qemu-" });
  try {
    let kernel: string | undefined;
    let initrd: string | undefined;
    if (options.script !== undefined) {
      kernel = cloudKernel() ?? undefined;
      if (!kernel) {
        throw new Error(
          "No /boot/vmlinuz-* (apt-get install linux-image-cloud-amd64)",
        );
      }
      initrd = await buildInitramfs(dir, options.script);
    }
    const vm = await startQemu(dir, "src", {
      memMiB: options.memMiB,
      kernel,
      initrd,
      paused: kernel === undefined,
    });
    try {
      if (kernel) await waitReady(vm.serialLog);
      const file = `${dir}/out.stream`;
      await vm.qmp.execute("migrate", { uri: `exec:cat > ${file}` });
      const status = await vm.qmp.waitMigration();
      if (status !== "completed") {
        throw new Error(`Migration ended "${status}"`);
      }
      return await Deno.readFile(file);
    } finally {
      await vm.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
