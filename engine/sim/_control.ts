/**
 * Layout of the control block shared between {@link SimVm} and its workload
 * worker: an `Int32Array` over a small `SharedArrayBuffer`, plus a
 * `BigInt64Array` over its tail for counters.
 */

/** Index of the run state: one of RUN, PAUSE, STOP. */
export const C_STATE = 0;
/** Index of the worker's acknowledgement: 1 while parked (no write in progress). */
export const C_PARKED = 1;
/** Index of the dirty rate in page writes per second. */
export const C_RATE = 2;
/** Index set to 1 if the worker's writer threw. */
export const C_FAILED = 3;
/** Index (in the `BigInt64Array` view) of the count of pages written. */
export const C64_PAGES_WRITTEN = 2;

/** Run state: the workload writes. */
export const RUN = 0;
/** Run state: the workload must park between page writes. */
export const PAUSE = 1;
/** Run state: the workload must stop for good. */
export const STOP = 2;

/** Bytes of the control block: `Int32` slots 0..3 (bytes 0..15), `BigInt64` slot 2 (bytes 16..23). */
export const CONTROL_BYTES = 32;

/** What the VM sends the worker once, to start it. */
export interface WorkerStart {
  readonly memory: SharedArrayBuffer;
  readonly bitmap: SharedArrayBuffer;
  readonly control: SharedArrayBuffer;
  readonly workload: string;
  readonly seed: number;
}

/** What the worker sends back. */
export type WorkerReport =
  | { readonly type: "ready"; readonly initMillis: number }
  | { readonly type: "error"; readonly message: string };
