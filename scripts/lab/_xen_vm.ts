/**
 * The Xen-in-QEMU host VM: QEMU (TCG, `-cpu qemu64`) loads the Xen
 * hypervisor by multiboot (`-kernel xen -initrd "vmlinuz args,dom0.cpio.gz"`)
 * and Xen boots the Debian kernel as a PV dom0.
 *
 * Control channel: the serial port. Xen owns com1 and forwards serial input
 * to dom0's console (hvc0), where the dom0 init runs a busybox shell. QEMU
 * exposes the port as a unix socket (`-chardev socket,...,logfile=`), so the
 * whole serial transcript also lands in `serial.log`. {@link XenLabVm.exec}
 * wraps each command between two markers that the echo of the command
 * itself cannot contain, and returns the text between them and `$?`.
 *
 * @module
 */

import { DOM0_READY, type XenLabImages } from "./_xen_build.ts";

/** Options for {@link XenLabVm.boot}. */
export interface XenVmOptions {
  /** Folder for the socket and the serial log. */
  readonly runDir: string;
  /** Host VM memory in MiB (default 1536). */
  readonly memMiB?: number;
  /** dom0 memory in MiB (default 512). */
  readonly dom0MiB?: number;
  /** Host VM vCPUs (default 2). */
  readonly smp?: number;
  /**
   * QEMU CPU model (default `qemu64,+svm,+npt`: TCG's SVM with nested paging
   * gives Xen HAP, which HVM/PVH guests and their log-dirty need).
   */
  readonly cpu?: string;
  /**
   * More Xen command-line options, e.g. `serial_tx_buffer=1M` so that long
   * outputs from dom0 are not cut (Xen drops console characters once its
   * 16 KiB transmit buffer is full).
   */
  readonly xenArgs?: readonly string[];
  /** Boot timeout in ms (default 180 s). */
  readonly timeoutMs?: number;
  readonly log?: (s: string) => void;
}

/** Result of {@link XenLabVm.exec}. */
export interface ExecResult {
  readonly out: string;
  readonly rc: number;
  readonly ms: number;
}

const enc = new TextEncoder();

/** A running Xen lab VM. */
export class XenLabVm {
  #child: Deno.ChildProcess;
  #conn: Deno.UnixConn;
  #text = "";
  /** Characters trimmed off the front of `#text` (offsets stay absolute). */
  #dropped = 0;
  #seq = 0;
  #closed = false;
  #waiters: (() => void)[] = [];
  /** Milliseconds from QEMU start to the dom0 ready marker. */
  bootMs = 0;
  readonly serialLog: string;

  private constructor(
    child: Deno.ChildProcess,
    conn: Deno.UnixConn,
    serialLog: string,
  ) {
    this.#child = child;
    this.#conn = conn;
    this.serialLog = serialLog;
    this.#pump();
  }

  /** Boots the VM and waits for the dom0 ready marker. */
  static async boot(
    images: XenLabImages,
    options: XenVmOptions,
  ): Promise<XenLabVm> {
    const log = options.log ?? (() => {});
    await Deno.mkdir(options.runDir, { recursive: true });
    const sock = `${options.runDir}/console.sock`;
    const serialLog = `${options.runDir}/serial.log`;
    await Deno.remove(sock).catch(() => {});
    await Deno.remove(serialLog).catch(() => {});
    const dom0 = options.dom0MiB ?? 512;
    const xenArgs = [
      `dom0_mem=${dom0}M,max:${dom0}M`,
      "dom0_max_vcpus=1",
      "console=com1",
      "com1=115200,8n1",
      "loglvl=warning",
      "guest_loglvl=warning",
      "noreboot",
      ...options.xenArgs ?? [],
    ].join(" ");
    // QEMU's multiboot -initrd: "file args,file args"; a comma in args is ",,".
    const dom0Args = "console=hvc0 quiet loglevel=3";
    const initrd = [
      `${images.kernel} ${dom0Args}`,
      ...images.dom0Initrds,
    ].map((s) => s.replaceAll(",", ",,")).join(",");
    const args = [
      "-accel",
      "tcg",
      "-cpu",
      options.cpu ??
        // deno's V8 wants more than qemu64's SSE3 baseline
        (images.withDeno
          ? "qemu64,+svm,+npt,+ssse3,+sse4.1,+sse4.2,+popcnt"
          : "qemu64,+svm,+npt"),
      "-m",
      String(options.memMiB ?? 1536),
      "-smp",
      String(options.smp ?? 2),
      "-display",
      "none",
      "-monitor",
      "none",
      "-no-reboot",
      "-nodefaults",
      "-chardev",
      `socket,id=con0,path=${sock},server=on,wait=on,logfile=${serialLog}`,
      "-serial",
      "chardev:con0",
      "-kernel",
      images.xen,
      "-append",
      xenArgs,
      "-initrd",
      initrd,
    ];
    log(`qemu-system-x86_64 ${args.join(" ")}`);
    const t0 = performance.now();
    const child = new Deno.Command("qemu-system-x86_64", {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    let conn: Deno.UnixConn | null = null;
    for (let i = 0; i < 200 && conn === null; i++) {
      try {
        conn = await Deno.connect({ transport: "unix", path: sock });
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    if (conn === null) {
      child.kill("SIGKILL");
      throw new Error(`QEMU did not open ${sock}`);
    }
    const vm = new XenLabVm(child, conn, serialLog);
    try {
      await vm.waitFor(new RegExp(DOM0_READY), options.timeoutMs ?? 180_000);
    } catch (e) {
      await vm.kill();
      throw new Error(
        `dom0 did not become ready: ${
          (e as Error).message
        }\n--- serial tail ---\n${vm.#text.slice(-3000)}`,
      );
    }
    vm.bootMs = Math.round(performance.now() - t0);
    log(`dom0 ready in ${vm.bootMs} ms`);
    // let the shell print its prompt, then sync once
    await vm.exec("true", 30_000);
    return vm;
  }

  async #pump(): Promise<void> {
    const td = new TextDecoder();
    const buf = new Uint8Array(65536);
    try {
      while (true) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.#text += td.decode(buf.subarray(0, n), { stream: true });
        if (this.#text.length > 4_000_000) {
          const cut = this.#text.length - 2_000_000;
          this.#text = this.#text.slice(cut);
          this.#dropped += cut;
        }
        for (const w of this.#waiters.splice(0)) w();
      }
    } catch { /* closed */ }
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Everything read from the console so far. */
  get transcript(): string {
    return this.#text;
  }

  /**
   * Waits until `re` matches the transcript from `from` on (an offset into
   * everything read, which stays valid when the front is trimmed).
   */
  async waitFor(
    re: RegExp,
    timeoutMs: number,
    from = 0,
  ): Promise<RegExpMatchArray> {
    const deadline = performance.now() + timeoutMs;
    while (true) {
      const m = this.#text.slice(Math.max(0, from - this.#dropped)).match(re);
      if (m) return m;
      if (this.#closed) throw new Error(`console closed waiting for ${re}`);
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${re}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Runs `cmd` in the dom0 shell; returns its output and exit status. */
  async exec(cmd: string, timeoutMs = 120_000): Promise<ExecResult> {
    if (cmd.includes("\n")) throw new Error("exec: one line only");
    const id = ++this.#seq;
    const from = this.#dropped + this.#text.length;
    const t0 = performance.now();
    // "HK""B" in the echoed line never equals "HKB" in the output.
    const line = `echo "HK""BEG-${id}"; ${cmd}; echo "HK""END-${id} rc=$?"\n`;
    await this.#send(line);
    const re = new RegExp(
      `HKBEG-${id}\\r*\\n([\\s\\S]*?)HKEND-${id} rc=(\\d+)`,
    );
    const m = await this.waitFor(re, timeoutMs, from);
    return {
      out: m[1].replaceAll("\r", ""),
      rc: Number(m[2]),
      ms: Math.round(performance.now() - t0),
    };
  }

  /**
   * Writes to the console in small paced chunks: Xen buffers serial input
   * for dom0 in a 128-byte ring and drops what overflows it.
   */
  async #send(text: string): Promise<void> {
    const bytes = enc.encode(text);
    for (let i = 0; i < bytes.length; i += 32) {
      await this.#conn.write(bytes.subarray(i, i + 32));
      if (i + 32 < bytes.length) await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Like {@link exec}, but throws when the status is not 0. */
  async ok(cmd: string, timeoutMs = 120_000): Promise<ExecResult> {
    const r = await this.exec(cmd, timeoutMs);
    if (r.rc !== 0) {
      throw new Error(`dom0: "${cmd}" exited ${r.rc}:\n${r.out.slice(-3000)}`);
    }
    return r;
  }

  /** Powers the whole VM off (dom0 poweroff ends Xen; QEMU exits). */
  async shutdown(timeoutMs = 30_000): Promise<void> {
    try {
      await this.#conn.write(enc.encode("poweroff -f\n"));
    } catch { /* already gone */ }
    const t = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, timeoutMs);
    await this.#child.status;
    clearTimeout(t);
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }

  /** Kills QEMU at once. */
  async kill(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.#child.status;
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}
