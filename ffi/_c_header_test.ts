import assert from "node:assert/strict";
import {
  defineString,
  denoKind,
  dropName,
  enumValue,
  kindOf,
  prototype,
  stripComments,
} from "./_c_header.ts";

Deno.test("the prototype parser reads parameter kinds", () => {
  const h =
    "int f(xc_interface *xch, uint32_t d, unsigned int *mb,\n unsigned long pages);\n" +
    "long long g(void);\nvoid *h(struct x *a, const char *p, size_t n, int err[]);\n" +
    "struct y byValue(struct y, uint64_t, signed char c, double d);";
  assert.deepEqual(prototype(h, "f"), {
    result: "i32",
    params: ["ptr", "u32", "ptr", "u64"],
  });
  assert.deepEqual(prototype(h, "g"), { result: "i64", params: [] });
  assert.deepEqual(prototype(h, "h"), {
    result: "ptr",
    params: ["ptr", "ptr", "usize", "ptr"],
  });
  assert.deepEqual(prototype(h, "byValue"), {
    result: "struct",
    params: ["struct", "u64", "i8", "f64"],
  });
  assert.throws(() => prototype(h, "missing"), /No prototype for missing/);
});

Deno.test("a dialect names a library's own pointer and scalar typedefs", () => {
  const h = "fooPtr foo_open(foo_id_t id, foo_handler cb);";
  assert.throws(() => prototype(h, "foo_open"), /Unknown C type "foo_id_t"/);
  assert.deepEqual(
    prototype(h, "foo_open", {
      pointers: [/^foo\w*Ptr$/, "foo_handler"],
      scalars: { "foo_id_t": "u16" },
    }),
    { result: "ptr", params: ["u16", "ptr"] },
  );
  // a dialect's scalar may rename a standard one's kind too
  assert.equal(kindOf("uint32_t", { scalars: { "uint32_t": "u64" } }), "u64");
});

Deno.test("kindOf and dropName read declarations", () => {
  assert.equal(kindOf("const unsigned long long"), "u64");
  assert.equal(kindOf("unsigned long int"), "u64");
  assert.equal(kindOf("char *"), "ptr");
  assert.equal(kindOf("struct s"), "struct");
  assert.throws(() => kindOf("strange_t"), /Unknown C type "strange_t"/);
  assert.equal(dropName("unsigned long *libVer"), "unsigned long*");
  assert.equal(dropName("int err[]"), "int*");
  assert.equal(dropName("struct s"), "struct s");
  assert.equal(dropName("uint32_t"), "uint32_t");
  assert.equal(dropName("const char *const *names"), "const char* const*");
});

Deno.test("denoKind compares with kindOf", () => {
  assert.equal(denoKind("pointer"), "ptr");
  assert.equal(denoKind("buffer"), "ptr");
  assert.equal(denoKind("function"), "ptr");
  assert.equal(denoKind({ struct: ["u8"] }), "struct");
  assert.equal(denoKind("u32"), "u32");
});

Deno.test("stripComments removes comments and whole preprocessor lines", () => {
  const h = stripComments(
    "/* int hidden(void); */\n" +
      "#define WRAP(x) \\\n  int wrapped(void);\n" +
      "// int alsoHidden(void);\n" +
      "int shown(void);\n",
  );
  assert.deepEqual(prototype(h, "shown"), { result: "i32", params: [] });
  for (const name of ["hidden", "wrapped", "alsoHidden"]) {
    assert.throws(() => prototype(h, name), /No prototype/);
  }
});

Deno.test("enumValue and defineString read constants", () => {
  const raw = '#  define NAME_X "x-name"\n' +
    "enum e { A = 3, B = (1 << 4), C = B, D = -1, E = A + 1 };";
  const text = stripComments(raw);
  assert.equal(enumValue(text, "A"), 3);
  assert.equal(enumValue(text, "B"), 16);
  assert.equal(enumValue(text, "C"), 16);
  assert.equal(enumValue(text, "D"), -1);
  assert.throws(() => enumValue(text, "E"), /Cannot evaluate E = A \+ 1/);
  assert.throws(() => enumValue(text, "F"), /No enum member F/);
  assert.equal(defineString(raw, "NAME_X"), "x-name");
  assert.throws(() => defineString(raw, "NAME_Y"), /No #define NAME_Y/);
});
