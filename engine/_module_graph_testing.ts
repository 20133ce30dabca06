/**
 * The module graph of some of the repository's files as `deno info` sees
 * it, for the tests that hold the layering (the engine loads no
 * presentation package, the report package loads vega only to render). Not
 * part of the public API.
 *
 * @module
 */

/** The repository root, where `deno.json` is. */
const ROOT = new URL("../", import.meta.url);

/** What a set of files imports, directly or through each other. */
export interface ModuleGraph {
  /** Local files reached, roots included, relative to the repository root (`engine/plan.ts`). */
  readonly files: readonly string[];
  /** npm packages imported by a local file, by name (`vega`, `@xmldom/xmldom`). */
  readonly npmPackages: readonly string[];
  /** Node built-ins imported by a local file (`node:tls`), sorted. */
  readonly nodeBuiltins: readonly string[];
}

/** Which edges of the graph {@link moduleGraph} follows. */
export interface ModuleGraphOptions {
  /**
   * Follow `import()` (default true): what the files can load. False: only
   * what loads when they are imported.
   */
  readonly dynamic?: boolean;
  /** Follow `import type` (default true): what type-checking them needs. */
  readonly types?: boolean;
}

/** `npm:/@scope/name@1.2.3/sub` or `npm:name@^1` to `@scope/name` or `name`. */
function npmPackageName(specifier: string): string {
  const rest = specifier.replace(/^npm:\/?/, "");
  const scoped = rest.startsWith("@");
  const parts = rest.split("/");
  const name = scoped ? `${parts[0]}/${parts[1]}` : parts[0];
  const at = name.indexOf("@", scoped ? 1 : 0);
  return at === -1 ? name : name.slice(0, at);
}

interface InfoDependency {
  readonly code?: { readonly specifier: string };
  readonly type?: { readonly specifier: string };
  readonly isDynamic?: boolean;
}

interface InfoJson {
  readonly modules: readonly {
    readonly specifier: string;
    readonly dependencies?: readonly InfoDependency[];
  }[];
  readonly redirects: Readonly<Record<string, string>>;
}

/**
 * Every local file and npm package that `roots` (paths relative to the
 * repository root) import, following the edges `options` allows. One
 * `deno info --json` over a temporary module that imports all the roots,
 * so a folder of files costs one call.
 *
 * @example
 * ```ts ignore
 * const { npmPackages } = await moduleGraph(["engine/plan.ts"]);
 * ```
 */
export async function moduleGraph(
  roots: readonly string[],
  options: ModuleGraphOptions = {},
): Promise<ModuleGraph> {
  const { dynamic = true, types = true } = options;
  const dir = await Deno.makeTempDir({ prefix: "hakobu_graph_" });
  try {
    const entry = `${dir}/roots.ts`;
    await Deno.writeTextFile(
      entry,
      roots.map((r) => `import "${new URL(r, ROOT).href}";\n`).join(""),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "info",
        "--json",
        "--config",
        new URL("deno.json", ROOT).pathname,
        entry,
      ],
      cwd: ROOT.pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `Cannot read the module graph of ${roots.length} files: deno info exited with ${out.code}: ${
          new TextDecoder().decode(out.stderr)
        }`,
      );
    }
    const info: InfoJson = JSON.parse(new TextDecoder().decode(out.stdout));
    const byUrl = new Map(info.modules.map((m) => [m.specifier, m]));
    const resolve = (s: string) => info.redirects[s] ?? s;

    const files = new Set<string>();
    const npm = new Set<string>();
    const builtins = new Set<string>();
    const seen = new Set<string>();
    const queue = roots.map((r) => new URL(r, ROOT).href);
    while (queue.length > 0) {
      const url = resolve(queue.pop()!);
      if (seen.has(url)) continue;
      seen.add(url);
      if (url.startsWith("npm:")) {
        npm.add(npmPackageName(url));
        continue;
      }
      if (url.startsWith("node:")) {
        builtins.add(url);
        continue;
      }
      if (!url.startsWith(ROOT.href)) continue;
      files.add(url.slice(ROOT.href.length));
      for (const dep of byUrl.get(url)?.dependencies ?? []) {
        if (dep.isDynamic && !dynamic) continue;
        if (dep.code) queue.push(dep.code.specifier);
        if (dep.type && types) queue.push(dep.type.specifier);
      }
    }
    return {
      files: [...files].sort(),
      npmPackages: [...npm].sort(),
      nodeBuiltins: [...builtins].sort(),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The `.ts` files under `folder` (relative to the repository root), sorted.
 *
 * @example
 * ```ts ignore
 * const files = await tsFilesUnder("engine"); // ["engine/_bounded_queue.ts", …]
 * ```
 */
export async function tsFilesUnder(folder: string): Promise<string[]> {
  const found: string[] = [];
  for await (const e of Deno.readDir(new URL(`${folder}/`, ROOT))) {
    const path = `${folder}/${e.name}`;
    if (e.isDirectory) found.push(...await tsFilesUnder(path));
    else if (e.isFile && e.name.endsWith(".ts")) found.push(path);
  }
  return found.sort();
}
