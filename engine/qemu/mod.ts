/**
 * QEMU backend: a QMP client, the policy driver that steers QEMU's own
 * migration with a hakobu plan, and the tunnel that carries QEMU's
 * single-channel migration stream through hakobu's codecs (stream mode).
 *
 * Read in this order: `qmp.ts`, `policy_driver.ts`, `stream/` (parse and
 * rebuild QEMU's stream), `tunnel.ts` (the stream tunnel, `engine/stream/`, with
 * the QEMU format) and `exec_tunnel.ts`.
 *
 * @module
 */

export * from "./qmp.ts";
export * from "./policy_driver.ts";
export * from "./exec_tunnel.ts";
export * from "./resident_tunnel.ts";
export { QemuStreamError } from "./stream/errors.ts";
export {
  type EosEvent,
  type OpaqueEvent as QemuOpaqueEvent,
  type PageEvent,
  type QemuEvent,
  QemuStreamParser,
  type QemuStreamParserOptions,
  type RamBlock,
  type RamSetupEvent,
  type SectionEvent,
  type ZeroRunEvent,
} from "./stream/parser.ts";
export { parseQemuStream, rebuildStream } from "./stream/writer.ts";
export {
  receiveQemuStream,
  sendQemuStream,
  type TunnelReceiveOptions,
  type TunnelSendOptions,
} from "./tunnel.ts";
