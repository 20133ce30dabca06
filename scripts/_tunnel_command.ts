/**
 * How a checkout runs its QEMU tunnel, for the benches that compare one
 * checkout's tunnel with another's: `scripts/tunnel.ts qemu` (the stream
 * tunnel), or, in a checkout from before it, `engine/qemu/tunnel_main.ts`.
 *
 * @module
 */

/**
 * The script and words before `send|receive` of the checkout at `root`, or
 * null when `root` is not a hakobu checkout.
 *
 * @example
 * ```ts ignore
 * await qemuTunnelCommand("/work/main/"); // ["/work/main/scripts/tunnel.ts", "qemu"]
 * ```
 */
export async function qemuTunnelCommand(
  root: string,
): Promise<string[] | null> {
  const dir = root.endsWith("/") ? root : `${root}/`;
  const isFile = async (p: string) =>
    (await Deno.stat(p).catch(() => null))?.isFile === true;
  if (await isFile(`${dir}scripts/tunnel.ts`)) {
    return [`${dir}scripts/tunnel.ts`, "qemu"];
  }
  if (await isFile(`${dir}engine/qemu/tunnel_main.ts`)) {
    return [`${dir}engine/qemu/tunnel_main.ts`];
  }
  return null;
}
