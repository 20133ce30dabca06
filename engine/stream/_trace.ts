/**
 * Where a stream tunnel's time goes, for chasing a migration's downtime:
 * with `HAKOBU_TRACE_TUNNEL=FILE` in its environment, each tunnel process
 * appends one line per phase to FILE: `EPOCH_MS PID EVENT`. Epoch
 * milliseconds on the host clock, as QMP stamps its events, so a trace lines
 * up with the source's `STOP` and the destination's `RESUME` (bench:qemu's
 * JSON rows carry both). A few lines per migration (the setup: the
 * hypervisor's and the other tunnel's connections, the stream's first
 * bytes, HELLO and WELCOME, the channels ready; round changes, the stream's
 * end, the verdict), so it costs nothing measurable; nothing is written
 * without the variable or without the permission to read it.
 *
 * @module
 */

const file = ((): string | undefined => {
  try {
    return Deno.env.get("HAKOBU_TRACE_TUNNEL") || undefined;
  } catch {
    return undefined; // no --allow-env: no trace
  }
})();

/** Appends `event` with the time and this process's id, when tracing is on. */
export function traceTunnel(event: string): void {
  if (file === undefined) return;
  const ms = performance.timeOrigin + performance.now();
  try {
    Deno.writeTextFileSync(file, `${ms.toFixed(1)} ${Deno.pid} ${event}\n`, {
      append: true,
    });
  } catch {
    // A trace must never fail a migration.
  }
}
