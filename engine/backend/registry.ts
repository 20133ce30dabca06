/**
 * Every backend by its scheme, and the parser that turns a source string
 * (`sim:WORKLOAD`, `qemu:QMP_SOCKET`, `xen:DOMAIN`, …) into a {@link Backend}.
 * Adding a backend is its file and one line in {@link BACKENDS}.
 *
 * @module
 */

import {
  type Backend,
  BackendError,
  type BackendFactory,
  type BackendOpenOptions,
} from "./backend.ts";
import { libvirtBackend } from "./libvirt.ts";
import { qemuBackend } from "./qemu.ts";
import { simBackend } from "./sim.ts";
import { xenBackend } from "./xen.ts";

/** The backends, in the order help and errors list them. */
const BACKENDS: readonly BackendFactory[] = [
  simBackend,
  qemuBackend,
  xenBackend,
  libvirtBackend,
];

/**
 * Every backend, in the order help and errors list them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backendFactories } from "@hakobu/hakobu";
 *
 * assert.deepEqual(backendFactories().map((b) => b.sourceForm).slice(0, 3), [
 *   "sim:WORKLOAD",
 *   "qemu:QMP_SOCKET",
 *   "xen:DOMAIN",
 * ]);
 * ```
 */
export function backendFactories(): readonly BackendFactory[] {
  return BACKENDS;
}

/** The source forms, joined for messages: `sim:WORKLOAD, qemu:QMP_SOCKET, xen:DOMAIN or libvirt:URI/DOMAIN`. */
function sourceForms(): string {
  const forms = BACKENDS.map((b) => b.sourceForm);
  return forms.length > 1
    ? `${forms.slice(0, -1).join(", ")} or ${forms.at(-1)}`
    : forms.join("");
}

/**
 * The backend for `scheme`, or a {@link BackendError} naming the schemes there are.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backendByScheme } from "@hakobu/hakobu";
 *
 * assert.equal(backendByScheme("qemu").sourceForm, "qemu:QMP_SOCKET");
 * assert.throws(() => backendByScheme("vmware"), /Unknown backend "vmware"/);
 * ```
 */
export function backendByScheme(scheme: string): BackendFactory {
  const found = BACKENDS.find((b) => b.scheme === scheme);
  if (!found) {
    throw new BackendError(
      `Unknown backend "${scheme}": expected one of ${
        BACKENDS.map((b) => `"${b.scheme}"`).join(", ")
      }`,
      { field: "source" },
    );
  }
  return found;
}

/**
 * Splits a source string into its backend and the rest, without opening
 * it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBackendSource } from "@hakobu/hakobu";
 *
 * const { factory, rest } = parseBackendSource("qemu:/run/vm1.qmp");
 * assert.equal(factory.scheme, "qemu");
 * assert.equal(rest, "/run/vm1.qmp");
 * assert.throws(
 *   () => parseBackendSource("vmware:vm1"),
 *   /Cannot parse source "vmware:vm1": expected sim:WORKLOAD, qemu:QMP_SOCKET, xen:DOMAIN or libvirt:URI\/DOMAIN/,
 * );
 * ```
 *
 * @throws {BackendError} naming the string and every accepted form.
 */
export function parseBackendSource(
  source: string,
): { readonly factory: BackendFactory; readonly rest: string } {
  const colon = source.indexOf(":");
  const scheme = colon < 0 ? "" : source.slice(0, colon);
  const factory = BACKENDS.find((b) => b.scheme === scheme);
  if (!factory) {
    throw new BackendError(
      `Cannot parse source "${source}": expected ${sourceForms()}${
        colon < 0 ? "" : ` ("${scheme}" is no backend)`
      }`,
      { field: "source" },
    );
  }
  return { factory, rest: source.slice(colon + 1) };
}

/**
 * Opens a source string as its backend: parses it and checks what can be
 * checked without touching the VM (which {@link Backend.migrate} does).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openBackend } from "@hakobu/hakobu";
 *
 * const vm = openBackend("sim:idle", { memoryBytes: 8 * 2 ** 20 });
 * assert.equal(vm.scheme, "sim");
 * assert.match(vm.targetForm, /HOST:PORT/);
 * assert.throws(() => openBackend("memcached"), /expected sim:WORKLOAD/);
 * ```
 *
 * @throws {BackendError} naming the string and the forms accepted.
 */
export function openBackend(
  source: string,
  options: BackendOpenOptions = {},
): Backend {
  const { factory, rest } = parseBackendSource(source);
  return factory.open(rest, options);
}
