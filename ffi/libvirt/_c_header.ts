/**
 * Test helpers that read C headers: a function's prototype as Deno FFI
 * kinds, an enum member's value, a `#define`'s string. Written for
 * libvirt's headers (after `ffi/xen/xen_test.ts`'s parser, with libvirt's
 * `virFooPtr` typedefs and `virErrorFunc` counted as pointers).
 *
 * @module
 */

/** A parameter or result kind: a Deno native type, or `"ptr"` for any pointer. */
export type Kind = string;

const SCALARS: Record<string, Kind> = {
  "void": "void",
  "int": "i32",
  "unsigned": "u32",
  "unsigned int": "u32",
  "long": "i64",
  "unsigned long": "u64",
  "long long": "i64",
  "long long int": "i64",
  "unsigned long long": "u64",
  "unsigned long long int": "u64",
  "size_t": "usize",
  "double": "f64",
};

/** The Deno FFI kind of a C type (`"ptr"` for pointers, arrays, `*Ptr` typedefs and function typedefs). */
export function kindOf(
  cType: string,
  pointerTypedefs: readonly string[] = [],
): Kind {
  const t = cType.replace(/\b(const|volatile|restrict)\b/g, " ")
    .replace(/\s+/g, " ").trim();
  if (t.includes("*") || t.includes("[")) return "ptr";
  if (/^vir\w*Ptr$/.test(t) || pointerTypedefs.includes(t)) return "ptr";
  if (t in SCALARS) return SCALARS[t];
  throw new Error(`Unknown C type "${t}"`);
}

/** The kind of a Deno FFI type. */
export function denoKind(t: Deno.NativeType | Deno.NativeResultType): Kind {
  if (t === "pointer" || t === "buffer" || t === "function") return "ptr";
  return t as string;
}

const TYPE_WORDS = new Set([
  "unsigned",
  "signed",
  "long",
  "int",
  "short",
  "char",
  "const",
  "void",
]);

/** A parameter declaration without its name: `"unsigned long *libVer"` → `"unsigned long*"`. */
export function dropName(param: string): string {
  const tokens =
    param.replace(/\[[^\]]*\]/g, " * ").match(/[A-Za-z_]\w*|\*/g) ??
      [];
  const last = tokens[tokens.length - 1];
  if (tokens.length > 1 && last !== "*" && !TYPE_WORDS.has(last)) tokens.pop();
  return tokens.join(" ").replace(/ \*/g, "*");
}

/** Removes comments and preprocessor lines. */
export function stripComments(header: string): string {
  return header.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/.*$/gm, " ")
    .replace(/^\s*#.*$/gm, " ");
}

/** `ret name(params);` out of a header's text (comments stripped), as kinds. */
export function prototype(
  text: string,
  name: string,
  pointerTypedefs: readonly string[] = [],
): { result: Kind; params: Kind[] } {
  const re = new RegExp(
    String
      .raw`(?:^|[;}])\s*((?:const\s+)?[A-Za-z_]\w*(?:\s+[A-Za-z_]\w*)*[\s*]*?)\b` +
      name + String.raw`\s*\(([^;{]*?)\)\s*;`,
    "m",
  );
  const m = re.exec(text);
  if (!m) throw new Error(`No prototype for ${name}`);
  const params = m[2].trim() === "void"
    ? []
    : m[2].split(",").map((p) => kindOf(dropName(p), pointerTypedefs));
  return { result: kindOf(m[1], pointerTypedefs), params };
}

/**
 * The value of enum member `name` (`NAME = 3`, `NAME = (1 << 4)`, or
 * `NAME = OTHER_NAME`) in a header's text (comments stripped).
 */
export function enumValue(text: string, name: string, depth = 0): number {
  const m = new RegExp(String.raw`\b${name}\s*=\s*([^,}]+)`).exec(text);
  if (!m) throw new Error(`No enum member ${name}`);
  const expr = m[1].trim();
  let n: RegExpExecArray | null;
  if ((n = /^\(?\s*(-?\d+)\s*\)?$/.exec(expr))) return Number(n[1]);
  if ((n = /^\(?\s*1\s*<<\s*(\d+)\s*\)?$/.exec(expr))) return 1 << Number(n[1]);
  if (/^[A-Z_][A-Z0-9_]*$/.test(expr) && depth < 4) {
    return enumValue(text, expr, depth + 1);
  }
  throw new Error(`Cannot evaluate ${name} = ${expr}`);
}

/** The string a `# define NAME "value"` gives, in a header's raw text. */
export function defineString(text: string, name: string): string {
  const m = new RegExp(String.raw`#\s*define\s+${name}\s+"([^"]*)"`).exec(text);
  if (!m) throw new Error(`No #define ${name}`);
  return m[1];
}

/**
 * The typed-parameter type a macro's doc comment names (`as
 * VIR_TYPED_PARAM_ULLONG`, `Type is VIR_TYPED_PARAM_INT`), lower-cased
 * (`"ullong"`); undefined when the comment names none.
 */
export function documentedParamType(
  text: string,
  name: string,
): string | undefined {
  const m = new RegExp(
    String
      .raw`/\*\*\s*\n\s*\*\s*${name}:([\s\S]*?)\*/\s*#\s*define\s+${name}\b`,
  ).exec(text);
  const t = m && /VIR_TYPED_PARAM_([A-Z]+)/.exec(m[1]);
  return t ? t[1].toLowerCase() : undefined;
}
