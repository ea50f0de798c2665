-- The C parser's LuaJIT subset, case by case (ffi.cdef, ffi.typeof): attributes in every
-- position, __declspec and #pragma pack, constants inside structs, the keywords and every
-- spelling of the basic types LuaJIT's parser takes. Beyond LuaJIT (marked T.ours): 64-bit
-- static constants, _Alignof.
local ffi = require "ffi"
local T = require "testlib"

local function size_align(t) return ffi.sizeof(t) .. "/" .. ffi.alignof(t) end

-- ---- 1. __attribute__ in every position ----

ffi.cdef [[
__attribute__((aligned(8))) int ps_attr_first;
struct ps_elem { char c; int __attribute__((aligned(8))) a[10]; };
struct __attribute__((packed)) ps_kw_packed { char c; int x; };
struct ps_after { char c; } __attribute__((aligned(8)));
struct ps_member_after { char c; int x __attribute__((aligned(16))); };
struct ps_member_before { char c; __attribute__((aligned(4))) short x; };
struct ps_member_packed { char c; int x __attribute__((packed)); };
typedef struct __attribute__((packed)) { char c; int x; } ps_packed_t;
typedef __attribute__((aligned(16))) struct { int x; } ps_al16_t;
void ps_noreturn(int) __attribute__((noreturn, nothrow, format(printf, 1, 2), __nonnull__(1)));
__attribute__((noreturn)) __attribute__((__cold__)) void ps_cold(void);
extern int ps_deprecated __attribute__((deprecated("use something else"), unused));
int ps_visible(const char *, ...) __attribute__((__visibility__("default"), warn_unused_result, const));
]]
T.eq(size_align("struct ps_elem"), "48/8", "aligned(8) on array elements")
T.eq(ffi.offsetof("struct ps_elem", "a"), 8, "aligned(8) array member offset")
T.eq(size_align("struct ps_kw_packed"), "5/1", "packed after the struct keyword")
T.eq(size_align("struct ps_after"), "8/8", "aligned(8) after the body")
T.eq(ffi.offsetof("struct ps_member_after", "x"), 16, "aligned(16) after a member declarator")
T.eq(ffi.offsetof("struct ps_member_before", "x"), 4, "aligned(4) before a member's type")
T.eq(size_align("struct ps_member_packed"), "5/1", "packed member")
T.eq(size_align("ps_packed_t"), "5/1", "packed anonymous struct typedef")
T.eq(size_align("ps_al16_t"), "16/16", "aligned before the struct keyword of a typedef")
T.eq(ffi.sizeof(ffi.typeof("int __attribute__((aligned(8))) [10]")), 40, "aligned array element type in typeof")
T.ok(ffi.typeof("void (*)(int) __attribute__((noreturn))") ~= nil, "ignored attribute on an abstract function type")

-- aligned(n) on a typedef or type name: raised or lowered, its size unchanged (gcc, LuaJIT).
ffi.cdef [[
typedef int __attribute__((aligned(8))) ps_ai8;
typedef double ps_ad2 __attribute__((aligned(2)));
struct ps_uses_ai8 { char c; ps_ai8 x; };
struct ps_uses_ad2 { char c; ps_ad2 x; };
]]
T.eq(size_align("ps_ai8"), "4/8", "aligned(8) typedef of int")
T.eq(size_align("ps_ad2"), "8/2", "aligned(2) typedef of double lowers it")
T.eq(size_align("struct ps_uses_ai8") .. " " .. ffi.offsetof("struct ps_uses_ai8", "x"), "16/8 8", "a member of an aligned(8) typedef")
T.eq(size_align("struct ps_uses_ad2") .. " " .. ffi.offsetof("struct ps_uses_ad2", "x"), "10/2 2", "a member of an aligned(2) typedef")
T.eq(size_align(ffi.typeof("int __attribute__((aligned(8)))")), "4/8", "aligned type name")
T.eq(size_align(ffi.typeof("__attribute__((aligned(8))) int")), "4/8", "aligned type name, attribute first")
T.str(ffi.typeof("ps_ai8"), "ctype<int>", "an aligned int prints as int")
T.eq(tonumber(ffi.new("ps_ai8", 7)), 7, "an aligned int converts as int")
local ai8s = ffi.new("struct ps_uses_ai8", { 1, 2 })
T.eq(ai8s.x, 2, "a member of an aligned typedef reads as its type")

-- mode(...): gcc machine modes resize a numeric base type.
local modes = {
  { "int __attribute__((mode(QI)))", 1 }, { "int __attribute__((mode(__HI__)))", 2 },
  { "unsigned __attribute__((mode(SI)))", 4 }, { "int __attribute__((mode(DI)))", 8 },
  { "__attribute__((mode(DI))) unsigned", 8 }, { "double __attribute__((mode(SF)))", 4 },
  { "float __attribute__((mode(DF)))", 8 },
}
for _, m in ipairs(modes) do
  T.eq(ffi.sizeof(ffi.typeof(m[1])), m[2], "mode: " .. m[1])
end
T.ours("gcc's byte and word modes (LuaJIT ignores them)", function()
  T.eq(ffi.sizeof(ffi.typeof("int __attribute__((__mode__(__byte__)))")), 1, "mode(byte)")
  T.eq(ffi.sizeof(ffi.typeof("int __attribute__((mode(word)))")), ffi.sizeof("void *"), "mode(word)")
end)
T.str(ffi.typeof("unsigned __attribute__((mode(DI)))"), "ctype<uint64_t>", "mode(DI) unsigned is uint64_t")
-- LuaJIT's reading of a mode (cp_decl_mode): the size letter counts when an I or F follows,
-- whatever the base type's class; a floating type takes only 4 or 8 bytes, bool none.
local mode_types = {
  { "int __attribute__((mode(HF)))", "ctype<short>" }, { "int __attribute__((mode(SF)))", "ctype<int>" },
  { "int __attribute__((mode(DF)))", "ctype<int64_t>" }, { "float __attribute__((mode(DI)))", "ctype<double>" },
  { "double __attribute__((mode(SI)))", "ctype<float>" }, { "double __attribute__((mode(TF)))", "ctype<double>" },
  { "double __attribute__((mode(XF)))", "ctype<double>" }, { "double __attribute__((mode(TC)))", "ctype<double>" },
  { "float __attribute__((mode(SC)))", "ctype<float>" }, { "int __attribute__((mode(XX)))", "ctype<int>" },
  { "char __attribute__((mode(HI)))", "ctype<short>" }, { "bool __attribute__((mode(SI)))", "ctype<bool>" },
  { "double __attribute__((mode(QI)))", "ctype<double>" },
  { "int __attribute__((mode(V2DI)))", "ctype<int64_t __attribute__((vector_size(16)))>" },
}
for _, m in ipairs(mode_types) do
  T.str(ffi.typeof(m[1]), m[2], "mode as LuaJIT reads it: " .. m[1])
end
ffi.cdef "typedef int ps_i8 __attribute__((mode(QI))); typedef unsigned int ps_u64 __attribute__((__mode__(__DI__)));"
T.eq(ffi.sizeof("ps_i8") .. "/" .. ffi.sizeof("ps_u64"), "1/8", "mode on typedefs (glibc's int8_t style)")

-- ---- 2. __declspec(align(n)) and #pragma pack ----

ffi.cdef [[
struct ps_dbl_default { char c; double d; };
struct __declspec(align(16)) ps_ds16 { int x; };
struct ps_ds_member { char c; __declspec(align(8)) int x; };
__declspec(dllimport) __declspec(noreturn) void ps_dllimport(void);
#pragma pack(push, 1)
struct ps_pack1 { char c; int x; };
#pragma pack(push, 2)
struct ps_pack2 { char c; int x; };
#pragma pack(pop)
struct ps_pack1b { char c; double d; };
#pragma pack(pop)
struct ps_unpacked { char c; int x; };
#pragma pack(4)
struct ps_pack4 { char c; double d; };
#pragma pack()
struct ps_reset { char c; double d; };
#pragma once
#pragma GCC visibility push(default)
]]
T.eq(size_align("struct ps_ds16"), "16/16", "__declspec(align(16)) on a struct")
T.eq(ffi.offsetof("struct ps_ds_member", "x"), 8, "__declspec(align(8)) on a member")
T.eq(size_align("struct ps_pack1"), "5/1", "#pragma pack(push, 1)")
T.eq(size_align("struct ps_pack2"), "6/2", "#pragma pack(push, 2) nested")
T.eq(size_align("struct ps_pack1b"), "9/1", "#pragma pack(pop) back to 1")
T.eq(size_align("struct ps_unpacked"), "8/4", "#pragma pack(pop) back to the default")
T.eq(size_align("struct ps_pack4"), "12/4", "#pragma pack(4)")
T.eq(size_align("struct ps_reset"), size_align("struct ps_dbl_default"), "#pragma pack() resets")

-- ---- 3. vector types (vector_size, vector modes), laid out as LuaJIT lays them ----

ffi.cdef [[
typedef float ps_v4sf __attribute__((vector_size(16)));
typedef int ps_v4si __attribute__((mode(V4SI)));
struct ps_vec_member { char c; ps_v4sf v; };
]]
local vectors = {
  { "int __attribute__((vector_size(16)))", "16/16", "ctype<int __attribute__((vector_size(16)))>" },
  { "double __attribute__((vector_size(32)))", "32/16", "ctype<double __attribute__((vector_size(32)))>" },
  { "float __attribute__((vector_size(12)))", "8/8", "ctype<float __attribute__((vector_size(8)))>" },
  { "unsigned char __attribute__((vector_size(8)))", "8/8", "ctype<unsigned char __attribute__((vector_size(8)))>" },
  { "__attribute__((vector_size(8))) short", "8/8", "ctype<short __attribute__((vector_size(8)))>" },
  { "float __attribute__((mode(V4SF)))", "16/16", "ctype<float __attribute__((vector_size(16)))>" },
  { "const int __attribute__((vector_size(16)))", "16/16", "ctype<const int __attribute__((vector_size(16)))>" },
  { "int __attribute__((vector_size(2)))", "4/4", "ctype<int>" },
  { "bool __attribute__((vector_size(16)))", "1/1", "ctype<bool>" },
  { "ps_v4si", "16/16", "ctype<int __attribute__((vector_size(16)))>" },
  { "ps_v4sf[2]", "32/16", "ctype<float __attribute__((vector_size(16))) [2]>" },
  { "ps_v4sf *", "" .. ffi.sizeof("void *") .. "/" .. ffi.alignof("void *"), "ctype<float __attribute__((vector_size(16))) *>" },
}
for _, v in ipairs(vectors) do
  local ct = ffi.typeof(v[1])
  T.eq(size_align(ct), v[2], "vector size/alignment: " .. v[1])
  T.str(ct, v[3], "vector spelling: " .. v[1])
end
T.eq(size_align("struct ps_vec_member"), "32/16", "a vector member aligns the struct")
T.eq(ffi.offsetof("struct ps_vec_member", "v"), 16, "a vector member's offset")
local vec = ffi.new("ps_v4sf", 1, 2, 3, 4)
T.eq(vec[0] + vec[3], 5, "vector elements are read by index")
T.ok(ffi.istype("ps_v4sf", vec), "ffi.istype of a vector")
T.err("attempt to write to constant location", "vector elements are read-only (as LuaJIT)", function() vec[0] = 5 end)
T.eq(ffi.cast("float *", ffi.new("ps_v4sf[1]", { { 7, 8, 9, 10 } }))[1], 8, "vector elements are laid out in order")
-- Calls and callbacks with vectors by value: vectors.lua (against compiled C).

-- ---- 4. static const members and enums inside structs ----

ffi.cdef [[
struct ps_consts {
  static const int K = 1 << 4 | 1, J = -2;
  static const unsigned char UC = 300;
  static const signed char SC = 255;
  static const unsigned int U = -1;
  static const uint32_t BIG = 0xffffffff;
  int x;
  enum { PS_EA = 3, PS_EB };
  enum ps_named { PS_EN = 9 } e;
  struct { static const int DEEP = 5; int y; };
};
union ps_uconsts { static const int K = 5; int a; float b; };
struct ps_only_consts { static const int K = 7; };
]]
local pc = ffi.new("struct ps_consts")
T.eq(pc.K, 17, "static const member through an instance")
T.eq(pc.J, -2, "second declarator of a static const")
T.eq(pc.UC, 44, "static const unsigned char truncates")
T.eq(pc.SC, -1, "static const signed char wraps")
T.eq(pc.U, 4294967295, "static const unsigned int")
T.eq(pc.BIG, 4294967295, "static const uint32_t")
T.eq(type(pc.K), "number", "a constant member reads as a number")
T.eq(pc.PS_EB, 4, "enumerator of an unnamed member enum through an instance")
T.eq(ffi.C.PS_EB, 4, "member enumerators are global constants too")
T.eq(ffi.C.PS_EN, 9, "named member enum's enumerators are global")
T.eq(pc.DEEP, 5, "static const in an anonymous member struct")
T.eq(ffi.typeof("struct ps_consts").K, 17, "static const member through the ctype")
T.eq(ffi.typeof("struct ps_consts").PS_EA, 3, "member enumerator through the ctype")
T.eq(ffi.typeof("struct ps_consts *").K, 17, "static const member through a pointer ctype")
T.eq(ffi.new("struct ps_consts[1]")[0].K, 17, "static const member through an array element")
T.eq((ffi.new("struct ps_consts[1]") + 0).K, 17, "static const member through a pointer")
T.eq(ffi.new("union ps_uconsts").K, 5, "static const member of a union")
T.eq(ffi.sizeof("struct ps_only_consts"), 0, "constants take no room")
T.eq(ffi.offsetof("struct ps_consts", "x"), 0, "constants take no room before a member")
T.err("attempt to write to constant location", "a constant member is read-only", function() pc.K = 1 end)
T.err("attempt to write to constant location", "a constant member of the ctype is read-only",
  function() ffi.typeof("struct ps_consts").K = 1 end)
T.err("'struct ps_consts' has no member named 'PS_EN'", "named member enum is not in the struct's namespace",
  function() return pc.PS_EN end)
T.err("'struct ps_consts' has no member named 'x'", "a ctype has no data members", function()
  return ffi.typeof("struct ps_consts").x
end)
T.err("missing declaration for symbol 'K'", "static const members are not global", function() return ffi.C.K end)
T.err("invalid C type", "static members must be const integers", ffi.cdef, "struct ps_bad1 { static int k = 1; };")
T.err("invalid C type", "no floating static constants", ffi.cdef, "struct ps_bad2 { static const double k = 1; };")
T.err("'=' expected near ';'", "a static constant needs a value", ffi.cdef, "struct ps_bad3 { static const int k; };")
ffi.cdef "struct ps_mt { static const int K = 1; int a; };"
ffi.metatype("struct ps_mt", { __index = { K = 99, z = 5 } })
T.eq(ffi.new("struct ps_mt").K .. "/" .. ffi.new("struct ps_mt").z, "1/5", "constants come before the metatype's __index")

-- ---- 5. static const integer constants at file scope ----

ffi.cdef "static const int PS_SMALL = 42; static const unsigned short PS_US = -1; static const char PS_CH = 'A';"
T.eq(ffi.C.PS_SMALL, 42, "static const int")
T.eq(ffi.C.PS_US, 65535, "static const unsigned short")
T.eq(ffi.C.PS_CH, 65, "static const char from a character constant")
T.ours("64-bit static constants (LuaJIT: only types up to 4 bytes, 'invalid C type')", function()
  ffi.cdef [[
  static const long long PS_LL = 0x123456789LL;
  static const int64_t PS_NEG = -5;
  static const uint64_t PS_U64 = 0xffffffffffffffffULL;
  struct ps_consts64 { static const int64_t K = 1LL << 40; };
  ]]
  -- A 64-bit value is a Lua integer on 5.3+ and an int64 cdata before.
  local function digits(v) return (tostring(v):gsub("U?LL$", "")) end
  T.eq(digits(ffi.C.PS_LL), "4886718345", "static const long long")
  T.eq(digits(ffi.C.PS_NEG), "-5", "static const int64_t")
  T.eq(digits(ffi.C.PS_U64), "18446744073709551615", "static const uint64_t")
  T.eq(digits(ffi.new("struct ps_consts64").K), "1099511627776", "static const int64_t member")
end)

-- ---- 6. keywords and spellings ----

ffi.cdef [[
__extension__ typedef long long ps_ext_ll;
__extension__ struct ps_ext { __extension__ long long x; };
void *ps_memcpy(void *__restrict dst, const void *restrict src, size_t __restrict__ n);
static __inline int ps_inl(int x) { return x + 1; }
__inline__ int ps_inl2(int x);
inline int ps_inl3(int x);
__const int ps_c1;
int ps_strlen(const char *) __asm__("strlen");
int ps_abs(int) __asm("" "abs");
extern int ps_asm_var asm("ps_some_var");
int ps_param(register int x);
]]
T.eq(ffi.sizeof("ps_ext_ll"), 8, "__extension__ typedef")
T.eq(ffi.C.ps_strlen("abcd"), 4, "ffi.C.f resolves the __asm__ name")
T.eq(ffi.C.ps_abs(-3), 3, "__asm__ names concatenate adjacent strings")
T.eq(ffi.sizeof(ffi.typeof("int[__alignof__(double)]")), 4 * ffi.alignof("double"), "__alignof__")
T.eq(ffi.sizeof(ffi.typeof("int[__alignof(short)]")), 8, "__alignof")
T.eq(ffi.sizeof(ffi.typeof("int[sizeof(struct ps_ext)]")), 32, "sizeof in a constant expression")
T.ours("C11's _Alignof (LuaJIT: 'unexpected symbol')", function()
  T.eq(ffi.sizeof(ffi.typeof("int[_Alignof(double)]")), 4 * ffi.alignof("double"), "_Alignof")
end)

local spellings = {
  { "__const int *", "ctype<const int *>" }, { "__const__ int", "ctype<const int>" },
  { "__volatile__ int *", "ctype<volatile int *>" }, { "__volatile int", "ctype<volatile int>" },
  { "int * __restrict", "ctype<int *>" }, { "__signed__ char", "ctype<char>" }, { "__signed int", "ctype<int>" },
  { "signed char", "ctype<char>" }, { "char signed", "ctype<char>" }, { "unsigned char", "ctype<unsigned char>" },
  { "short int", "ctype<short>" }, { "signed short", "ctype<short>" }, { "unsigned short int", "ctype<unsigned short>" },
  { "short unsigned", "ctype<unsigned short>" }, { "signed", "ctype<int>" }, { "unsigned", "ctype<unsigned int>" },
  { "long long", "ctype<int64_t>" }, { "long long int", "ctype<int64_t>" }, { "signed long long int", "ctype<int64_t>" },
  { "unsigned long long int", "ctype<uint64_t>" }, { "long long unsigned", "ctype<uint64_t>" },
  { "long double", "ctype<long double>" }, { "_Bool", "ctype<bool>" }, { "bool", "ctype<bool>" },
  { "__int8", "ctype<char>" }, { "__int16", "ctype<short>" }, { "__int32", "ctype<int>" },
  { "__int64", "ctype<int64_t>" }, { "unsigned __int64", "ctype<uint64_t>" }, { "unsigned __int8", "ctype<unsigned char>" },
  { "_Complex", "ctype<complex>" }, { "complex", "ctype<complex>" }, { "complex double", "ctype<complex>" },
  { "double complex", "ctype<complex>" }, { "double _Complex", "ctype<complex>" }, { "__complex__ double", "ctype<complex>" },
  { "complex float", "ctype<complex float>" }, { "float _Complex", "ctype<complex float>" },
  { "_Complex float", "ctype<complex float>" }, { "__complex float", "ctype<complex float>" },
  { "int __ptr64 *", "ctype<int *>" }, { "int * __ptr64", "ctype<int *>" }, { "void * __ptr64 *", "ctype<void **>" },
  { "float", "ctype<float>" }, { "double", "ctype<double>" },
}
for _, s in ipairs(spellings) do
  T.str(ffi.typeof(s[1]), s[2], "spelling: " .. s[1])
end
-- The type names of LuaJIT's own parser tests (ffi_parse_basic.lua) with their size/alignment.
local luajit_types = {
  { "char /* abc */ const", "1/1" }, { "char // abc\n const", "1/1" }, { "ch\\\nar", "1/1" },
  { " \n\r\t\vchar \n\r\t\v", "1/1" }, { "int __attribute__((mode(V2QI)))", "2/2" },
  { "double __attribute__((mode(V8SF)))", "32/16" }, { "double __attribute__((vector_size(64)))", "64/16" },
  { "char __attribute__((vector_size(8)))", "8/8" }, { "char __attribute((aligned(8)))", "1/8" },
  { "char __attribute__((__aligned__(8)))", "1/8" }, { "char __declspec(align(8))", "1/8" },
  { "__declspec(align(8)) char", "1/8" }, { "char __attribute__((aligned(8))) const __attribute__((aligned(16)))", "1/16" },
  { "char __attribute__((aligned(8))) const __attribute__((aligned(2)))", "1/2" },
  { "int __attribute__((aligned(16))) __attribute__((aligned(4)))", "4/4" },
  { "_Complex float", "8/4" }, { "_Complex double", "16/" .. ffi.alignof("double") },
}
for _, c in ipairs(luajit_types) do
  T.eq(size_align(ffi.typeof(c[1])), c[2], "LuaJIT parse test: " .. c[1]:gsub("%c", "~"))
end
-- The last aligned(n) of a typedef is its alignment too; a member keeps the largest (gcc).
ffi.cdef [[
typedef int __attribute__((aligned(16))) __attribute__((aligned(4))) ps_al_last;
struct ps_al_member { char c; int x __attribute__((aligned(16))) __attribute__((aligned(4))); };
]]
T.eq(size_align("ps_al_last"), "4/4", "the last aligned(n) of a typedef wins")
T.ours("several aligned(n) on a member: the largest wins, as gcc lays it out (LuaJIT: the last)", function()
  T.eq(ffi.offsetof("struct ps_al_member", "x"), 16, "the largest aligned(n) of a member wins")
end)
for _, bad in ipairs { "", " ", "1", ";", "int int", "int char", "int;", "const", "sizeof", "struct", "(*)", "xyz" } do
  T.ok(not pcall(ffi.typeof, bad), "LuaJIT parse test, an error: '" .. bad .. "'")
end

-- long is the target's: 32 bits on Windows and 32-bit targets, 64 on x86-64 Linux; LuaJIT
-- names a type by its size and signedness, so a 32-bit long is ctype<int>.
local long = ffi.sizeof("long") == 8 and "int64_t" or "int"
local ulong = ffi.sizeof("long") == 8 and "uint64_t" or "unsigned int"
for _, s in ipairs { "long", "long int", "int long", "long signed int", "signed long" } do
  T.str(ffi.typeof(s), "ctype<" .. long .. ">", "spelling: " .. s)
end
for _, s in ipairs { "unsigned long", "long unsigned int", "unsigned long int" } do
  T.str(ffi.typeof(s), "ctype<" .. ulong .. ">", "spelling: " .. s)
end

-- ---- 7. #define NAME <integer constant expression> (beyond LuaJIT) ----

T.ours("#define lines with integer constant expressions become constants (LuaJIT: 'unexpected symbol')", function()
  ffi.cdef [[
  #define PS_D_DEC 42
  #define PS_D_NEG (-1)
  #define PS_D_EXPR (PS_D_DEC * 2 + PS_EB)  /* 88: an enumerator too */
  #define PS_D_HEX 0x80000000
  #define PS_D_SIZE sizeof(struct ps_ext)
  #define PS_D_FUNC(x) ((x) + 1)
  #define PS_D_STR "text"
  #define PS_D_FLOAT 3.5
  #define PS_D_NAME strlen
  #define PS_D_EMPTY
  struct ps_after_define { int x[PS_D_DEC]; };
  ]]
  T.eq(ffi.C.PS_D_DEC, 42, "#define decimal")
  T.eq(ffi.C.PS_D_NEG, -1, "#define negative")
  T.eq(ffi.C.PS_D_EXPR, 88, "#define expression over defines and enumerators")
  T.eq(ffi.C.PS_D_HEX, 2147483648, "#define 0x80000000 is unsigned")
  T.eq(tonumber(ffi.C.PS_D_SIZE), 8, "#define sizeof (a size_t: boxed where Lua has no integers)")
  T.eq(ffi.sizeof("struct ps_after_define"), 168, "a #define constant as an array size")
  for _, name in ipairs { "PS_D_FUNC", "PS_D_STR", "PS_D_FLOAT", "PS_D_NAME", "PS_D_EMPTY" } do
    T.err("missing declaration for symbol '" .. name .. "'", "#define skipped: " .. name, function()
      return ffi.C[name]
    end)
  end
  T.noerr("the same #define again", ffi.cdef, "#define PS_D_DEC 42")
  T.err("attempt to redefine 'PS_D_DEC'", "#define with another value", ffi.cdef, "#define PS_D_DEC 43")
end)

T.done("parser.lua")
