/**
 * Test helpers that read installed C headers, so that each binding's tests
 * check its symbol table against the library's own declarations: a
 * function's prototype as Deno FFI kinds, an enum member's value, a
 * `#define`'s string. One parser for every binding (`ffi/xen/`,
 * `ffi/libvirt/`); what differs between libraries — which typedef names
 * are pointers or scalars — is passed in as a {@link CDialect}.
 *
 * @module
 */

/**
 * A parameter or result kind: a Deno native type (`"i32"`, `"u64"`, ...),
 * `"ptr"` for any pointer, or `"struct"` for a struct passed by value.
 */
export type Kind = string;

/** The typedef names of one library that are not standard C. */
export interface CDialect {
  /**
   * Typedef names that are pointers: exact names (a function typedef such
   * as libvirt's `virErrorFunc`) or patterns (libvirt's `virFooPtr`).
   */
  readonly pointers?: readonly (string | RegExp)[];
  /** Scalar typedefs, name → kind (Xen's `xs_transaction_t` → `"u32"`). */
  readonly scalars?: Readonly<Record<string, Kind>>;
}

/** Standard C and `<stdint.h>` scalars, as Deno FFI kinds on x86-64 Linux (LP64). */
const SCALARS: Readonly<Record<string, Kind>> = {
  "void": "void",
  "bool": "bool",
  "_Bool": "bool",
  "char": "i8",
  "signed char": "i8",
  "unsigned char": "u8",
  "short": "i16",
  "unsigned short": "u16",
  "int": "i32",
  "signed": "i32",
  "signed int": "i32",
  "unsigned": "u32",
  "unsigned int": "u32",
  "long": "i64",
  "long int": "i64",
  "unsigned long": "u64",
  "unsigned long int": "u64",
  "long long": "i64",
  "long long int": "i64",
  "unsigned long long": "u64",
  "unsigned long long int": "u64",
  "int8_t": "i8",
  "uint8_t": "u8",
  "int16_t": "i16",
  "uint16_t": "u16",
  "int32_t": "i32",
  "uint32_t": "u32",
  "int64_t": "i64",
  "uint64_t": "u64",
  "size_t": "usize",
  "ssize_t": "isize",
  "float": "f32",
  "double": "f64",
};

/**
 * The Deno FFI kind of a C type without a name: `"ptr"` for pointers,
 * arrays and the dialect's pointer typedefs, `"struct"` for `struct x` by
 * value; an unknown type throws, so that a new typedef is noticed.
 */
export function kindOf(cType: string, dialect: CDialect = {}): Kind {
  const t = cType.replace(/\b(const|volatile|restrict)\b/g, " ")
    .replace(/\s+/g, " ").replace(/ \*/g, "*").trim();
  if (t.includes("*") || t.includes("[")) return "ptr";
  const pointer = (dialect.pointers ?? []).some((p) =>
    typeof p === "string" ? p === t : p.test(t)
  );
  if (pointer) return "ptr";
  if (dialect.scalars && t in dialect.scalars) return dialect.scalars[t];
  if (t in SCALARS) return SCALARS[t];
  if (/^struct [A-Za-z_]\w*$/.test(t)) return "struct";
  throw new Error(`Unknown C type "${t}"`);
}

/** The kind of a Deno FFI type, comparable with {@link kindOf}'s. */
export function denoKind(t: Deno.NativeType | Deno.NativeResultType): Kind {
  if (t === "pointer" || t === "buffer" || t === "function") return "ptr";
  if (typeof t === "object") return "struct";
  return t;
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
  "bool",
  "float",
  "double",
]);

/**
 * A parameter declaration without its name: `"unsigned long *libVer"` →
 * `"unsigned long*"`, `"int err[]"` → `"int*"`; a declaration without a
 * name (`"struct x"`, `"uint32_t"`) stays whole.
 */
export function dropName(param: string): string {
  const array = /\[[^\]]*\]/.test(param);
  const tokens: string[] =
    param.replace(/\[[^\]]*\]/g, " ").match(/[A-Za-z_]\w*|\*/g) ??
      [];
  const last = tokens[tokens.length - 1];
  const before = tokens[tokens.length - 2];
  if (
    tokens.length > 1 && last !== "*" && !TYPE_WORDS.has(last) &&
    before !== "struct"
  ) {
    tokens.pop();
  }
  if (array) tokens.push("*");
  return tokens.join(" ").replace(/ \*/g, "*");
}

/** Removes comments and preprocessor lines (with their `\` continuations). */
export function stripComments(header: string): string {
  return header.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/.*$/gm, " ")
    .replace(/^[ \t]*#(?:.*\\\r?\n)*.*$/gm, " ");
}

/**
 * `ret name(params);` out of a header's text (comments stripped with
 * {@link stripComments}), as kinds.
 */
export function prototype(
  text: string,
  name: string,
  dialect: CDialect = {},
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
    : m[2].split(",").map((p) => kindOf(dropName(p), dialect));
  return { result: kindOf(m[1], dialect), params };
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
