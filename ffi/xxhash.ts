/**
 * Binding to the system libxxhash (xxHash 0.8.x): XXH3-128 of one buffer,
 * the hash of hakobu's memory verification (`engine/digest.ts`), and a
 * streaming XXH3-128 over bytes given in pieces ({@link Xxh3x128State}, the
 * stream tunnels' digest). Loaded on first use; `HAKOBU_LIBXXHASH`
 * overrides the library path.
 *
 * @module
 */

import { FfiError, lazyLibrary, type LibrarySpec } from "./_library.ts";

/** The libxxhash symbols hakobu uses; all synchronous. */
export const XXHASH_SYMBOLS = {
  // XXH128_hash_t XXH3_128bits(const void* data, size_t len);
  // (XXH128_hash_t is { XXH64_hash_t low64; XXH64_hash_t high64; }, returned by value)
  XXH3_128bits: {
    parameters: ["buffer", "usize"],
    result: { struct: ["u64", "u64"] },
  },
  // XXH3_state_t* XXH3_createState(void);  (NULL when out of memory)
  XXH3_createState: { parameters: [], result: "pointer" },
  // XXH_errorcode XXH3_freeState(XXH3_state_t* statePtr);
  XXH3_freeState: { parameters: ["pointer"], result: "i32" },
  // XXH_errorcode XXH3_128bits_reset(XXH3_state_t* statePtr);  (XXH_OK is 0)
  XXH3_128bits_reset: { parameters: ["pointer"], result: "i32" },
  // XXH_errorcode XXH3_128bits_update(XXH3_state_t* statePtr, const void* input, size_t length);
  XXH3_128bits_update: {
    parameters: ["pointer", "buffer", "usize"],
    result: "i32",
  },
  // XXH128_hash_t XXH3_128bits_digest(const XXH3_state_t* statePtr);
  XXH3_128bits_digest: {
    parameters: ["pointer"],
    result: { struct: ["u64", "u64"] },
  },
  // unsigned XXH_versionNumber(void);
  XXH_versionNumber: { parameters: [], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Where libxxhash is looked for: `HAKOBU_LIBXXHASH`, else `libxxhash.so.0`, else `libxxhash.so`. */
export const XXHASH_LIBRARY: LibrarySpec<typeof XXHASH_SYMBOLS> = {
  name: "libxxhash",
  envVar: "HAKOBU_LIBXXHASH",
  candidates: ["libxxhash.so.0", "libxxhash.so"],
  install: "apt-get install libxxhash0",
  symbols: XXHASH_SYMBOLS,
};

/**
 * The libxxhash symbols, loading the library on first call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libxxhash } from "./xxhash.ts";
 *
 * // low64 then high64, each little-endian (the C struct's bytes)
 * assert.equal(libxxhash().XXH3_128bits(new Uint8Array(1), 0n).length, 16);
 * ```
 *
 * @throws {FfiError} When libxxhash cannot be loaded or `--allow-ffi` is missing.
 */
export const libxxhash: () => Deno.DynamicLibrary<
  typeof XXHASH_SYMBOLS
>["symbols"] = lazyLibrary(XXHASH_LIBRARY);

/**
 * XXH3-128 of `bytes` in its canonical form (big-endian `high64` then
 * `low64`, as `xxh128sum` prints it), written into `out[at..at + 16)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hex } from "@hakobu/hakobu";
 * import { xxh3x128 } from "./xxhash.ts";
 *
 * const out = new Uint8Array(16);
 * xxh3x128(new Uint8Array(0), out, 0);
 * // `printf '' | xxh128sum`
 * assert.equal(hex(out), "99aa06d3014798d86001c324468d497f");
 * ```
 *
 * @throws {FfiError} When libxxhash cannot be loaded.
 */
export function xxh3x128(bytes: Uint8Array, out: Uint8Array, at: number): void {
  canonical(libxxhash().XXH3_128bits(bytes, BigInt(bytes.length)), out, at);
}

/**
 * Writes an `XXH128_hash_t` as returned by value into `out[at..at + 16)` in
 * canonical form: the struct's bytes are low64 LE then high64 LE, so
 * reversed they are the canonical high64 BE then low64 BE.
 */
function canonical(r: Uint8Array, out: Uint8Array, at: number): void {
  for (let i = 0; i < 16; i++) out[at + i] = r[15 - i];
}

/** Throws unless a libxxhash call returned XXH_OK (0). */
function unwrap(rc: number, what: string): void {
  if (rc !== 0) {
    throw new FfiError(
      "libxxhash",
      `${what} failed: libxxhash returned error code ${rc}`,
    );
  }
}

/** Frees a state whose owner was collected without {@link Xxh3x128State.close}. */
const STATES = new FinalizationRegistry<Deno.PointerObject>((p) => {
  libxxhash().XXH3_freeState(p);
});

/**
 * A running XXH3-128 (libxxhash's `XXH3_state_t`): bytes given in pieces,
 * in order, hash as the one buffer they make. Each {@link update} is one
 * FFI call on the calling thread (about 9 GB/s here); views over a
 * SharedArrayBuffer are hashed where they lie.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hex } from "@hakobu/hakobu";
 * import { Xxh3x128State } from "./xxhash.ts";
 *
 * const h = new Xxh3x128State();
 * try {
 *   h.update(new TextEncoder().encode("ab"));
 *   h.update(new TextEncoder().encode("c"));
 *   // `printf abc | xxh128sum`
 *   assert.equal(hex(h.digest()), "06b05ab6733a618578af5f94892f3950");
 * } finally {
 *   h.close();
 * }
 * ```
 *
 * @throws {FfiError} From the constructor when libxxhash cannot be loaded
 *   (the message names every path tried and the package to install).
 */
export class Xxh3x128State {
  #state: Deno.PointerObject | null;

  constructor() {
    const lib = libxxhash();
    const state = lib.XXH3_createState();
    if (state === null) {
      throw new FfiError(
        "libxxhash",
        "XXH3_createState failed: out of memory",
      );
    }
    this.#state = state;
    STATES.register(this, state, this);
    unwrap(lib.XXH3_128bits_reset(state), "XXH3_128bits_reset");
  }

  #live(): Deno.PointerObject {
    if (this.#state === null) {
      throw new FfiError("libxxhash", "XXH3-128 state used after close()");
    }
    return this.#state;
  }

  /** Adds `bytes` (hashed now; the caller keeps them). */
  update(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    unwrap(
      libxxhash().XXH3_128bits_update(
        this.#live(),
        bytes,
        BigInt(bytes.length),
      ),
      "XXH3_128bits_update",
    );
  }

  /** The XXH3-128 (canonical, 16 bytes) of everything given since the last {@link reset}. */
  digest(): Uint8Array {
    const out = new Uint8Array(16);
    canonical(libxxhash().XXH3_128bits_digest(this.#live()), out, 0);
    return out;
  }

  /** Starts over, as if nothing had been given. */
  reset(): void {
    unwrap(libxxhash().XXH3_128bits_reset(this.#live()), "XXH3_128bits_reset");
  }

  /** Frees the state; further calls throw. Closing twice does nothing. */
  close(): void {
    if (this.#state === null) return;
    STATES.unregister(this);
    libxxhash().XXH3_freeState(this.#state);
    this.#state = null;
  }
}

/**
 * libxxhash's version as `"major.minor.release"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { xxhashVersion } from "./xxhash.ts";
 *
 * assert.match(xxhashVersion(), /^0\.8\.\d+$/); // e.g. "0.8.1"
 * ```
 *
 * @throws {FfiError} When libxxhash cannot be loaded.
 */
export function xxhashVersion(): string {
  const v = libxxhash().XXH_versionNumber();
  return `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`;
}
