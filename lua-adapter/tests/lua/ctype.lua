-- ctype objects: ffi.typeof, tostring(ctype), ffi.sizeof, ffi.alignof, ffi.offsetof,
-- ffi.istype, ffi.cdef.
local ffi = require "ffi"
local T = require "testlib"

ffi.cdef [[
typedef struct ct_point { int x, y; } ct_point_t;
struct ct_bits { int a:3; unsigned b:4; int :0; unsigned c:5; int d; };
struct ct_al16 { char c; int v __attribute__((aligned(16))); };
struct ct_dbl { char c; double d; };
struct ct_vls { int n; double d[?]; };
struct ct_flex { int n; int items[]; };
union ct_u { int i; double d; char c[3]; };
struct ct_nested { struct ct_point p; int arr[4]; union { int ui; float uf; }; };
typedef int ct_myint;
enum ct_color { RED, GREEN = 5, BLUE };
struct ct_packed { char c; int i; } __attribute__((packed));
]]

-- tostring(ctype): LuaJIT's spelling.
local spellings = {
  { "int", "ctype<int>" }, { "unsigned int", "ctype<unsigned int>" }, { "unsigned", "ctype<unsigned int>" },
  { "char", "ctype<char>" }, { "signed char", "ctype<char>" }, { "unsigned char", "ctype<unsigned char>" },
  { "short", "ctype<short>" }, { "unsigned short", "ctype<unsigned short>" },
  { "long long", "ctype<int64_t>" }, { "unsigned long long", "ctype<uint64_t>" },
  { "int64_t", "ctype<int64_t>" }, { "uint64_t", "ctype<uint64_t>" }, { "int8_t", "ctype<char>" },
  { "uint8_t", "ctype<unsigned char>" }, { "int16_t", "ctype<short>" }, { "uint32_t", "ctype<unsigned int>" },
  { "float", "ctype<float>" }, { "double", "ctype<double>" }, { "bool", "ctype<bool>" }, { "_Bool", "ctype<bool>" },
  { "void", "ctype<void>" }, { "void *", "ctype<void *>" }, { "const char *", "ctype<const char *>" },
  { "const char * const *", "ctype<const char *const *>" }, { "int *const", "ctype<int *const>" },
  { "const int", "ctype<const int>" }, { "volatile int", "ctype<volatile int>" },
  { "int[10]", "ctype<int [10]>" }, { "int *[3]", "ctype<int *[3]>" }, { "int (*)[3]", "ctype<int (*)[3]>" },
  { "int[?]", "ctype<int [?]>" }, { "char[?]", "ctype<char [?]>" }, { "int[0]", "ctype<int [0]>" },
  { "int (*)(int, double)", "ctype<int (*)()>" }, { "void (*)(void)", "ctype<void (*)()>" },
  { "complex", "ctype<complex>" }, { "complex double", "ctype<complex>" }, { "complex float", "ctype<complex float>" },
  { "struct ct_point", "ctype<struct ct_point>" }, { "ct_point_t", "ctype<struct ct_point>" },
  { "ct_point_t *", "ctype<struct ct_point *>" }, { "const ct_point_t", "ctype<const struct ct_point>" },
  { "union ct_u", "ctype<union ct_u>" }, { "enum ct_color", "ctype<enum ct_color>" }, { "ct_myint", "ctype<int>" },
  { "size_t", "ctype<uint64_t>" }, { "ssize_t", "ctype<int64_t>" }, { "intptr_t", "ctype<int64_t>" },
  { "ptrdiff_t", "ctype<int64_t>" }, { "wchar_t", "ctype<int>" },
}
if ffi.abi("32bit") then
  -- Pointer-sized integers are 4 bytes there; long long and int64_t stay 8.
  local ptr_sized = { size_t = true, ssize_t = true, intptr_t = true, ptrdiff_t = true }
  for _, c in ipairs(spellings) do
    if ptr_sized[c[1]] then c[2] = c[2]:gsub("uint64_t", "unsigned int"):gsub("int64_t", "int") end
  end
end
for _, c in ipairs(spellings) do
  T.str(ffi.typeof(c[1]), c[2], "tostring(typeof " .. c[1] .. ")")
end

-- typeof of a cdata and of a ctype; ctype objects compare equal by type.
T.str(ffi.typeof(ffi.new("int[3]")), "ctype<int [3]>", "typeof(cdata)")
T.str(ffi.typeof(ffi.typeof("double")), "ctype<double>", "typeof(ctype)")
T.ok(ffi.typeof("int") == ffi.typeof("int"), "equal ctypes compare equal")
T.ok(ffi.typeof("ct_point_t") == ffi.typeof("struct ct_point"), "a typedef is its type")
T.ok(ffi.typeof("int") ~= ffi.typeof("unsigned int"), "different ctypes differ")

-- $ parameters.
local pt = ffi.typeof("ct_point_t")
T.str(ffi.typeof("$ *", pt), "ctype<struct ct_point *>", "typeof with a $ ctype")
T.str(ffi.typeof("$[$]", ffi.typeof("int"), 7), "ctype<int [7]>", "typeof with $ type and number")
T.eq(ffi.sizeof(ffi.typeof("struct { $ a; $ b; }", pt, ffi.typeof("double"))), 16, "struct of $ members")

-- sizeof / alignof. i386 Linux (gcc -m32, the i386 System V ABI) aligns double, long long
-- and complex double to 4 bytes; every other x86 target to 8.
local a8 = (ffi.arch == "x86" and ffi.os ~= "Windows") and 4 or 8
local sizes = {
  { "char", 1, 1 }, { "short", 2, 2 }, { "int", 4, 4 }, { "float", 4, 4 }, { "double", 8, a8 },
  { "int64_t", 8, a8 }, { "bool", 1, 1 }, { "int[10]", 40, 4 }, { "ct_point_t", 8, 4 },
  { "struct ct_dbl", 8 + a8, a8 }, { "union ct_u", 8, a8 }, { "struct ct_al16", 32, 16 },
  { "struct ct_packed", 5, 1 }, { "complex", 16, a8 }, { "complex float", 8, 4 },
  { "struct ct_bits", 12, 4 }, { "struct ct_flex", 4, 4 }, { "enum ct_color", 4, 4 },
}
for _, c in ipairs(sizes) do
  T.eq(ffi.sizeof(c[1]), c[2], "sizeof " .. c[1])
  T.eq(ffi.alignof(c[1]), c[3], "alignof " .. c[1])
end
T.eq(ffi.sizeof("void *"), ffi.abi("64bit") and 8 or 4, "sizeof pointer")
T.eq(ffi.sizeof("int[?]", 5), 20, "sizeof VLA with count")
T.eq(ffi.sizeof("struct ct_vls", 3), a8 + 24, "sizeof VLS with count")
T.eq(ffi.sizeof(ffi.new("int[?]", 7)), 28, "sizeof VLA cdata")
T.eq(ffi.sizeof(ffi.new("struct ct_vls", 2)), a8 + 16, "sizeof VLS cdata")
T.eq(ffi.sizeof(ffi.new("ct_point_t")), 8, "sizeof cdata")
T.eq(ffi.sizeof("void"), nil, "sizeof void is nil")
T.eq(ffi.sizeof("int[]"), nil, "sizeof int[] is nil")

-- offsetof, bit-fields as (storage unit offset, bit position, width).
T.eq(ffi.offsetof("ct_point_t", "y"), 4, "offsetof y")
T.eq(ffi.offsetof("struct ct_dbl", "d"), a8, "offsetof double member")
T.eq(ffi.offsetof("struct ct_al16", "v"), 16, "offsetof aligned(16) member")
T.eq(ffi.offsetof("struct ct_packed", "i"), 1, "offsetof packed member")
T.eq(ffi.offsetof("struct ct_nested", "arr"), 8, "offsetof array member")
T.eq(ffi.offsetof("struct ct_nested", "uf"), 24, "offsetof anonymous union member")
T.eq(ffi.offsetof("ct_point_t", "nope"), nil, "offsetof missing member")
T.ours("gcc's layout: attributes inside an inline struct specifier are the struct's, so an enclosing packed still packs the member (LuaJIT: 16 and 8)", function()
  ffi.cdef [[
  struct ct_pk_inline { int i; struct __attribute__((aligned(8))) { float f; } b; } __attribute__((packed));
  struct ct_pk_field { int i; struct { float f; } b __attribute__((aligned(8))); } __attribute__((packed));
  ]]
  T.eq(ffi.sizeof("struct ct_pk_inline"), 12, "packed struct with an inline aligned(8) struct member: size")
  T.eq(ffi.offsetof("struct ct_pk_inline", "b"), 4, "packed struct with an inline aligned(8) struct member: offset")
  T.eq(ffi.offsetof("struct ct_pk_field", "b"), 8, "aligned(8) on the member itself survives packed")
end)
do
  local o, pos, w = ffi.offsetof("struct ct_bits", "a")
  T.eq(o, 0, "bitfield a offset") T.eq(pos, 0, "bitfield a pos") T.eq(w, 3, "bitfield a width")
  o, pos, w = ffi.offsetof("struct ct_bits", "b")
  T.eq(o, 0, "bitfield b offset") T.eq(pos, 3, "bitfield b pos") T.eq(w, 4, "bitfield b width")
  o, pos, w = ffi.offsetof("struct ct_bits", "c")
  T.eq(o, 4, "bitfield c offset after :0") T.eq(pos, 0, "bitfield c pos") T.eq(w, 5, "bitfield c width")
  T.eq(ffi.offsetof("struct ct_bits", "d"), 8, "member after bit-fields")
end

-- istype.
local istype = {
  { "int", ffi.new("int"), true }, { "int", 5, false }, { "unsigned int", ffi.new("int"), false },
  { "const int", ffi.new("int"), true }, { "int *", ffi.new("const int *"), true },
  { "struct ct_point", ffi.new("struct ct_point *"), true }, { "struct ct_point *", ffi.new("struct ct_point"), false },
  { "int64_t", ffi.new("long long"), true }, { "double", ffi.new("float"), false },
  { "ct_point_t", ffi.new("ct_point_t"), true }, { "int[3]", ffi.new("int[3]"), true },
  { "int *", ffi.new("int[3]"), false }, { "void *", ffi.new("char *"), false }, { "char *", ffi.new("int *"), false },
  { "int", ffi.typeof("int"), true },
}
for i, c in ipairs(istype) do
  T.eq(ffi.istype(c[1], c[2]), c[3], "istype #" .. i .. " " .. c[1])
end
T.eq(ffi.istype(pt, ffi.new(pt)), true, "istype with a ctype object")

-- enum constants and redeclaration.
T.eq(tonumber(ffi.new("enum ct_color", "BLUE")), 6, "enum constant by name")
T.eq(tonumber(ffi.new("enum ct_color", 5)), 5, "enum from a number")
T.noerr("identical redeclaration is fine", ffi.cdef, "typedef int ct_myint;")
-- A conflicting typedef, function or extern declaration keeps the first one silently.
T.noerr("conflicting typedef is ignored", ffi.cdef, "typedef long ct_myint; typedef unsigned int size_t;")
T.eq(ffi.sizeof("ct_myint"), 4, "the first typedef stays")
T.eq(ffi.sizeof("size_t"), ffi.sizeof("void *"), "predefined size_t stays")
T.noerr("glibc asm redeclaration", ffi.cdef, [[
int atoi(const char *);
int atoi(const char *) __asm__("" "strlen");
]])
T.eq(tonumber(ffi.C.atoi("12345")), 12345, "the first declaration's symbol stays")
T.err("attempt to redefine 'BLUE'", "conflicting enumerator", ffi.cdef, "enum { BLUE = 1 };")

T.done("ctype.lua")
