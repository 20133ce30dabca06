/**
 * The shared lazy loader behind every FFI binding (liblz4, libzstd, and
 * later libxenctrl & co. and libxxhash), after denodrivers/sqlite3's
 * `src/ffi.ts`: an environment variable overrides the library path,
 * otherwise a list of candidate sonames is tried in order; a failure names
 * the library, every path tried with its error, and the fix.
 *
 * @module
 */

// The one import from above ffi/: the error base, a file that imports nothing.
import { HakobuError } from "../engine/errors.ts";

/**
 * A shared library could not be loaded or a call into it failed.
 *
 * @example
 * ```ts
 * try {
 *   lz4();
 * } catch (e) {
 *   if (e instanceof FfiError) console.error(e.library, e.tried);
 * }
 * ```
 */
export class FfiError extends HakobuError {
  /** The library, e.g. `"liblz4"`. */
  readonly library: string;
  /** Paths tried, in order (empty when the failure was not a load). */
  readonly tried: readonly string[];
  /**
   * @param library The library, e.g. `"liblz4"`.
   * @param message What went wrong and the fix.
   * @param options `cause` and the paths tried.
   */
  constructor(
    library: string,
    message: string,
    options?: ErrorOptions & { tried?: readonly string[] },
  ) {
    super(message, options);
    this.library = library;
    this.tried = Object.freeze([...(options?.tried ?? [])]);
  }
}

/** How to find one shared library. */
export interface LibrarySpec<S extends Deno.ForeignLibraryInterface> {
  /** Library name for messages, e.g. `"liblz4"`. */
  readonly name: string;
  /** Environment variable holding a path that overrides the candidates, e.g. `"HAKOBU_LIBLZ4"`. */
  readonly envVar: string;
  /** Sonames or paths tried in order when the variable is unset, e.g. `["liblz4.so.1", "liblz4.so"]`. */
  readonly candidates: readonly string[];
  /** How to install the library, e.g. `"apt-get install liblz4-1"`. */
  readonly install: string;
  /** The symbol table. */
  readonly symbols: S;
}

/** Options of {@link openLibrary}. */
export interface OpenLibraryOptions {
  /**
   * Path to load instead of the environment variable and the candidates
   * (tests inject a path here rather than changing the environment).
   */
  readonly path?: string;
}

/** Reads an environment variable without prompting; unset when not allowed to read it. */
function _env(name: string): string | undefined {
  try {
    if (
      Deno.permissions.querySync({ name: "env", variable: name }).state !==
        "granted"
    ) {
      return undefined;
    }
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/** Whether a dlopen failure was a permission failure (no `--allow-ffi`). */
function _isPermissionError(e: unknown): boolean {
  return e instanceof Deno.errors.NotCapable ||
    e instanceof Deno.errors.PermissionDenied;
}

/**
 * Opens a shared library now: the explicit path, else the spec's environment
 * variable, else each candidate in order.
 *
 * @example
 * ```ts
 * const lib = openLibrary({
 *   name: "libc", envVar: "HAKOBU_LIBC", candidates: ["libc.so.6"],
 *   install: "apt-get install libc6", symbols: { getpid: { parameters: [], result: "i32" } },
 * });
 * lib.symbols.getpid();
 * ```
 *
 * @throws {FfiError} When FFI is not allowed (`--allow-ffi`) or no path
 *   loads; the message names the library, the paths tried and the fix, and
 *   `cause` holds the last loader error.
 */
export function openLibrary<S extends Deno.ForeignLibraryInterface>(
  spec: LibrarySpec<S>,
  options: OpenLibraryOptions = {},
): Deno.DynamicLibrary<S> {
  const override = options.path ?? _env(spec.envVar);
  const paths = override !== undefined ? [override] : [...spec.candidates];
  const failures: string[] = [];
  let cause: unknown;
  for (const path of paths) {
    try {
      return Deno.dlopen(path, spec.symbols);
    } catch (e) {
      if (_isPermissionError(e)) {
        throw new FfiError(
          spec.name,
          `Cannot load ${spec.name} from "${path}": FFI is not allowed: run deno with --allow-ffi (or -A)`,
          { cause: e, tried: [path] },
        );
      }
      cause = e;
      failures.push(
        `"${path}" (${e instanceof Error ? e.message : String(e)})`,
      );
    }
  }
  const fix = override !== undefined
    ? `check the path in ${spec.envVar}, or unset it to try ${
      spec.candidates.map((c) => `"${c}"`).join(", ")
    }`
    : `install it (${spec.install}) or set ${spec.envVar} to the library's path`;
  throw new FfiError(
    spec.name,
    `Cannot load ${spec.name}: tried ${failures.join(", ")}: ${fix}`,
    { cause, tried: paths },
  );
}

/**
 * A library opened on first use and kept open for the process's life.
 *
 * @example
 * ```ts
 * const libc = lazyLibrary({
 *   name: "libc", envVar: "HAKOBU_LIBC", candidates: ["libc.so.6"],
 *   install: "apt-get install libc6", symbols: { getpid: { parameters: [], result: "i32" } },
 * });
 * libc().getpid();
 * ```
 *
 * @returns A function giving the symbols; it throws {@link FfiError} on
 *   every call while the library cannot be loaded (nothing is cached on
 *   failure, so a later call after a fix succeeds).
 */
export function lazyLibrary<S extends Deno.ForeignLibraryInterface>(
  spec: LibrarySpec<S>,
): () => Deno.DynamicLibrary<S>["symbols"] {
  let lib: Deno.DynamicLibrary<S> | undefined;
  return () => (lib ??= openLibrary(spec)).symbols;
}
