-- fuzz_lua case 1
local ffi = require "ffi"
ffi.cdef [[
int32_t ct_i32(int32_t x); uint32_t ct_u32(uint32_t x); int64_t ct_i64(int64_t x); uint64_t ct_u64(uint64_t x);
int64_t ct_narrow(int8_t a, uint8_t b, int16_t c, uint16_t d);
bool ct_not(bool b); float ct_fscale(float a, float b);
double ct_mix(double a, int b, double c, int64_t d);
size_t ct_strlen(const char *s); const char *ct_strid(const char *s); int ct_isnull(const void *p); void ct_nothing(void);
struct ct_pt { int32_t x, y; }; struct ct_mixed { double d; int32_t i; }; struct ct_ff { float a, b, c; };
struct ct_big { double a, b; int64_t c; }; union ct_u { int32_t i; float f; };
struct ct_pt ct_pt_make(int x, int y); int ct_pt_sum(struct ct_pt p); double ct_mixed_sum(struct ct_mixed m);
struct ct_ff ct_ff_rot(struct ct_ff f); double ct_big_sum(struct ct_big g); float ct_u_float(union ct_u u);
int64_t ct_pt_late(int a, int b, int c, int d, int e, int f, struct ct_pt p);
complex double ct_cmul(complex double a, complex double b); complex float ct_cfconj(complex float a);
double ct_vsum(int n, ...); int ct_set_errno(int e); int ct_get_errno(void);
extern int ct_counter; extern int ct_table[4]; extern const char *ct_name;
int ct_call_binop(int (*f)(int, int), int a, int b); double ct_call_dd(double (*f)(double, double), double a, double b);
int64_t ct_call_i64(int64_t (*f)(int64_t), int64_t a); uint8_t ct_call_u8(uint8_t (*f)(int8_t, uint16_t), int8_t a, uint16_t b);
bool ct_call_bool(bool (*f)(bool), bool b); const char *ct_call_str(const char *(*f)(const char *), const char *s);
void *ct_call_ptr(void *(*f)(void *), void *p); void ct_call_void(void (*f)(int), int a);
int ct_call_pt(int (*f)(struct ct_pt), int x, int y); struct ct_pt ct_call_ret_pt(struct ct_pt (*f)(int, int), int x, int y);
int snprintf(char *buf, size_t n, const char *fmt, ...); int abs(int x);
struct fz_p { int a; double d; char s[8]; int8_t *p; unsigned bf : 3; int64_t q; struct ct_pt pt; };
union fz_u { int32_t i; float f; uint8_t b[4]; };
struct fz_v { int n; double d[?]; };
struct fz_f { int n; char s[]; };
enum fz_e { FZ_A = 1, FZ_B = -2 };
typedef int (*fz_binop)(int, int);
]]
local CT = ffi.load(FUZZ_CALLTEST or os.getenv("LUAFFI_CALLTEST"))
local bad = {}
local function chk(n, ok, err)
  if not ok then
    if type(err) ~= "string" then
      bad[#bad + 1] = n .. ": the error is a " .. type(err) .. ": " .. tostring(err)
    elseif err:find("panick") or err:find("RUST_BACKTRACE") then
      bad[#bad + 1] = n .. ": " .. err
    end
  end
end
local function co(f, ...) return coroutine.resume(coroutine.create(f), ...) end
cbret = 0
local function cbf(...) return cbret end
local function raise(v) error(tostring(v), 0) end
local OP = {
  add = function(a, b) return a + b end, sub = function(a, b) return a - b end,
  mul = function(a, b) return a * b end, div = function(a, b) return a / b end,
  mod = function(a, b) return a % b end, pow = function(a, b) return a ^ b end,
  eq = function(a, b) return a == b end, lt = function(a, b) return a < b end,
  le = function(a, b) return a <= b end, concat = function(a, b) return a .. b end,
  unm = function(a) return -a end, len = function(a) return #a end,
  tostring = function(a) return tostring(a) end, tonumber = function(a, b) return tonumber(a, b) end,
  index = function(a, k) return a[k] end, newindex = function(a, k, v) a[k] = v end,
  call = function(f, ...) return f(...) end, set = function(c, f) return c:set(f) end,
  free = function(c) return c:free() end, pairs = function(a) for _ in pairs(a) do end end,
  ipairs = function(a) for _ in ipairs(a) do end end,
}
local B = {}
-- (LuaJIT makes no callbacks with records or complex numbers by value: B[25], B[37] and
-- B[38] are its error messages there.)
B[1] = ffi.new("int", 7)
B[2] = ffi.new("int[4]", 1, 2, 3, 4)
B[3] = ffi.new("struct fz_p")
B[4] = ffi.new("union fz_u")
B[5] = ffi.new("struct fz_v", 3)
B[6] = ffi.new("struct fz_f")
B[7] = ffi.new("int64_t", -1)
B[8] = ffi.new("uint64_t", 2^63)
B[9] = ffi.new("double complex", 1, 2)
B[10] = ffi.new("bool", true)
B[11] = ffi.new("enum fz_e", 1)
B[12] = ffi.new("char[8]", "abc")
B[13] = ffi.new("float[2][3]")
B[14] = ffi.typeof("int")
B[15] = ffi.typeof("struct fz_p")
B[16] = ffi.typeof("int[?]")
B[17] = ffi.new("const int", 3)
B[18] = ffi.new("uint8_t[?]", 5)
B[19] = ffi.cast("int *", B[2])
B[20] = ffi.cast("struct fz_p *", B[3])
B[21] = ffi.new("struct ct_pt", 1, 2)
B[22] = ffi.new("struct ct_big")
B[23] = ffi.cast("int (*)(int, int)", cbf)
B[24] = ffi.new("fz_binop", B[23])
B[25] = select(2, pcall(ffi.cast, "double (*)(double, int64_t, bool, const char *, struct ct_pt, union fz_u, void *, float complex)", cbf))
B[26] = ffi.new("struct fz_p[2]")
B[27] = CT.ct_table
B[28] = ffi.new("const char *[2]")
B[29] = ffi.new("int8_t[0]")
B[30] = ffi.cast("double (*)(double, double)", cbf)
B[31] = ffi.cast("int64_t (*)(int64_t)", cbf)
B[32] = ffi.cast("uint8_t (*)(int8_t, uint16_t)", cbf)
B[33] = ffi.cast("bool (*)(bool)", cbf)
B[34] = ffi.cast("const char *(*)(const char *)", cbf)
B[35] = ffi.cast("void *(*)(void *)", cbf)
B[36] = ffi.cast("void (*)(int)", cbf)
B[37] = select(2, pcall(ffi.cast, "int (*)(struct ct_pt)", cbf))
B[38] = select(2, pcall(ffi.cast, "struct ct_pt (*)(int, int)", cbf))
B[39] = ffi.new("struct ct_mixed", 1.5, 2)
B[40] = ffi.new("union ct_u")
B[41] = ffi.new("float complex", 0/0, 1)
local N = { ffi.new("void *"), ffi.new("int *"), ffi.cast("const char *", 0), ffi.new("fz_binop"), ffi.new("struct fz_p *"), ffi.new("int (*)[4]") }
local R = {}
-- statements
chk(1, co(OP.unm, B[36]))
chk(2, pcall(OP.div, R[2], -1))
chk(3, pcall(OP.index, B[23], 'int[-1]'))
chk(4, pcall(OP.call, B[10]))
chk(5, pcall(OP.len, B[22]))
chk(6, pcall(ffi.string, B[8], B[20]))
chk(7, pcall(OP.index, B[3], B[26]))
chk(8, pcall(OP.newindex, B[4], io.stdout, coroutine.create(cbf)))
chk(9, pcall(OP.newindex, B[31], 'double complex', R[6]))
chk(10, pcall(OP.newindex, B[27], io.stdout, {}))
chk(11, pcall(ffi.gc, 'bool', N[3], '1e999'))
chk(12, pcall(ffi.istype, 'struct fz_v', ffi.new('float', 0/0), 'int[?]', 2^53+1))
chk(13, pcall(ffi.gc, 'struct fz_p[?]', 2^53, 2^63, {0/0, math.huge}))
chk(14, pcall(OP.set, B[24], raise))
chk(15, pcall(OP.mul, N[5], {0/0, math.huge}))
chk(16, pcall(ffi.errno, N[6]))
collectgarbage()
chk(17, pcall(OP.lt, 'void', ffi.new('int64_t', 2^62)))
chk(18, pcall(OP.newindex, B[5], 'uint8_t[?]', B[9]))
chk(19, pcall(OP.newindex, B[35], '__index', -2^31))
chk(20, pcall(OP.add, N[1], R[1]))
chk(21, co(ffi.errno, 'char[?]', N[5]))
chk(22, pcall(ffi.new, ffi.typeof('int[?]'), {}, {1, {}, 'x', true}))
collectgarbage()
-- end
assert(#bad == 0, 'FUZZ-BAD\n' .. table.concat(bad, '\n'))
