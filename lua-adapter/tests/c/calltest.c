/* Test functions for the call and callback scripts (tests/lua/calls.lua, callbacks.lua).
 * Built into a shared library by tests/lua_suite.rs and loaded with ffi.load. Each
 * function returns something derived from every argument, so a misplaced argument shows. */
#include <complex.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Integers of each width, echoed or combined. */
int8_t ct_i8(int8_t x) { return x; }
uint8_t ct_u8(uint8_t x) { return x; }
int16_t ct_i16(int16_t x) { return x; }
uint16_t ct_u16(uint16_t x) { return x; }
int32_t ct_i32(int32_t x) { return x; }
uint32_t ct_u32(uint32_t x) { return x; }
int64_t ct_i64(int64_t x) { return x; }
uint64_t ct_u64(uint64_t x) { return x; }
int32_t ct_add(int32_t a, int32_t b) { return a + b; }
int64_t ct_narrow(int8_t a, uint8_t b, int16_t c, uint16_t d) { return (int64_t)a * 1000000000 + (int64_t)b * 1000000 + (int64_t)c * 10 + d; }
int64_t ct_sum8(int a, int b, int c, int d, int e, int f, int g, int h) {
  return a + 10LL * b + 100LL * c + 1000LL * d + 10000LL * e + 100000LL * f + 1000000LL * g + 10000000LL * h;
}
uint64_t ct_u64_add(uint64_t a, uint64_t b) { return a + b; }
bool ct_not(bool b) { return !b; }
int ct_bool_int(bool b) { return b ? 7 : 3; }

/* Floating point, including more than eight double arguments (the rest on the stack). */
float ct_fscale(float a, float b) { return a * b; }
double ct_mix(double a, int b, double c, int64_t d) { return a + b * 10 + c * 100 + (double)d * 1000; }
double ct_dsum10(double a, double b, double c, double d, double e, double f, double g, double h, double i, double j) {
  return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h + 9 * i + 10 * j;
}
double ct_fmix(float a, double b, float c) { return a + b * 2 + c * 4; }

/* Pointers and strings. */
size_t ct_strlen(const char *s) { return s ? strlen(s) : (size_t)-1; }
const char *ct_strid(const char *s) { return s; }
int ct_isnull(const void *p) { return p == 0; }
void ct_fill(int *p, int n, int v) { for (int i = 0; i < n; i++) p[i] = v + i; }
void ct_nothing(void) {}

/* Records by value. */
struct ct_pt { int32_t x, y; };                 /* 8 bytes: one GPR */
struct ct_mixed { double d; int32_t i; };       /* SSE + INTEGER */
struct ct_ff { float a, b, c; };                /* two SSE eightbytes */
struct ct_big { double a, b; int64_t c; };      /* 24 bytes: memory */
union ct_u { int32_t i; float f; };
struct ct_pt ct_pt_make(int x, int y) { struct ct_pt p = { x, y }; return p; }
int ct_pt_sum(struct ct_pt p) { return p.x * 100 + p.y; }
struct ct_mixed ct_mixed_make(double d, int i) { struct ct_mixed m = { d, i }; return m; }
double ct_mixed_sum(struct ct_mixed m) { return m.d + m.i * 1000; }
struct ct_ff ct_ff_rot(struct ct_ff f) { struct ct_ff r = { f.b, f.c, f.a }; return r; }
struct ct_big ct_big_make(double a, double b, int64_t c) { struct ct_big g = { a, b, c }; return g; }
double ct_big_sum(struct ct_big g) { return g.a + g.b * 10 + (double)g.c * 100; }
union ct_u ct_u_int(int i) { union ct_u u; u.i = i; return u; }
float ct_u_float(union ct_u u) { return u.f; }
/* Records after the registers are used up go on the stack. */
int64_t ct_pt_late(int a, int b, int c, int d, int e, int f, struct ct_pt p) { return a + b + c + d + e + f + p.x * 1000 + p.y * 100000; }

/* Complex numbers. */
double complex ct_cmul(double complex a, double complex b) { return a * b; }
float complex ct_cfconj(float complex a) { return conjf(a); }

/* Variadic. */
#include <stdarg.h>
double ct_vsum(int n, ...) {
  va_list ap; double s = 0;
  va_start(ap, n);
  for (int i = 0; i < n; i++) s += va_arg(ap, double);
  va_end(ap);
  return s;
}

/* errno. */
int ct_set_errno(int e) { errno = e; return -1; }
int ct_get_errno(void) { return errno; }

/* Globals for ffi.load'ed variables. */
int ct_counter = 41;
int ct_table[4] = { 1, 2, 3, 4 };
const char *ct_name = "calltest";

/* Callbacks of each kind, called from C. */
int ct_call_binop(int (*f)(int, int), int a, int b) { return f(a, b); }
double ct_call_dd(double (*f)(double, double), double a, double b) { return f(a, b); }
float ct_call_f(float (*f)(float), float a) { return f(a); }
int64_t ct_call_i64(int64_t (*f)(int64_t), int64_t a) { return f(a); }
uint8_t ct_call_u8(uint8_t (*f)(int8_t, uint16_t), int8_t a, uint16_t b) { return f(a, b); }
bool ct_call_bool(bool (*f)(bool), bool b) { return f(b); }
const char *ct_call_str(const char *(*f)(const char *), const char *s) { return f(s); }
void *ct_call_ptr(void *(*f)(void *), void *p) { return f(p); }
void ct_call_void(void (*f)(int), int a) { f(a); }
int64_t ct_call_many(int64_t (*f)(int, int, int, int, int, int, int, double, double, double, double, double, double, double, double, double),
                     int base) {
  return f(base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6,
           0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5);
}
int ct_call_pt(int (*f)(struct ct_pt), int x, int y) { struct ct_pt p = { x, y }; return f(p); }
struct ct_pt ct_call_ret_pt(struct ct_pt (*f)(int, int), int x, int y) { return f(x, y); }
double ct_call_big(double (*f)(struct ct_big), double a) { struct ct_big g = { a, a * 2, 3 }; return f(g); }
struct ct_big ct_call_ret_big(struct ct_big (*f)(double), double a) { return f(a); }
int ct_call_n(int (*f)(int), int n) { int s = 0; for (int i = 0; i < n; i++) s += f(i); return s; }
/* The x86 calling conventions (tests/lua/conventions.lua). For each convention, callees and
 * callers of the same five shapes: two ints (both in registers for fastcall, the first for
 * thiscall), a double between integers, ten mixed arguments (narrow, 64-bit, float), a record
 * in and out (i386 Linux returns it through the hidden pointer, which the callee pops for
 * stdcall), and a 24-byte record on the stack. Callers call the pointer twice, so a wrong
 * number of bytes popped by a callback's thunk corrupts the frame the second call and the
 * result use. The conventions exist on i386 only; elsewhere the same functions are plain C
 * (x86-64 has one convention, and the script checks the keywords are ignored there). */
#define CT_CONVENTION(conv, name)                                                                  \
  int conv ct_##name##_add(int a, int b) { return a * 10 + b; }                                    \
  double conv ct_##name##_mix(int a, double b, int c) { return a + b * 10 + c * 100; }             \
  int64_t conv ct_##name##_many(int8_t a, int16_t b, int64_t c, double d, float e, int f, int g,    \
                                uint8_t h, int i, int j) {                                          \
    return a + b * 10LL + c * 100 + (int64_t)(d * 1000) + (int64_t)(e * 10000) + f * 100000LL +      \
           g * 1000000LL + h * 10000000LL + i * 1000000000LL + j * 10000000000LL;                  \
  }                                                                                                \
  struct ct_pt conv ct_##name##_pt(struct ct_pt p, int k) {                                        \
    struct ct_pt r = { p.x * k, p.y + k };                                                         \
    return r;                                                                                      \
  }                                                                                                \
  double conv ct_##name##_big(struct ct_big g, int k) { return g.a + g.b * 10 + (double)g.c * 100 + k * 1000; } \
  int ct_##name##_call_add(int (conv *f)(int, int), int a, int b) { return f(a, b) + f(b, a) * 1000; } \
  double ct_##name##_call_mix(double (conv *f)(int, double, int), int a, double b, int c) {         \
    return f(a, b, c) + f(c, b, a) * 100000;                                                       \
  }                                                                                                \
  int64_t ct_##name##_call_many(int64_t (conv *f)(int8_t, int16_t, int64_t, double, float, int, int, \
                                                  uint8_t, int, int), int base) {                   \
    int64_t r = f(base, base + 1, base + 2, 0.5 + base, 1.5f, base + 3, base + 4, 200, base + 5, base + 6); \
    return r + f(1, 1, 1, 1, 1, 1, 1, 1, 1, 1) * 1000;                                             \
  }                                                                                                \
  int ct_##name##_call_pt(struct ct_pt (conv *f)(struct ct_pt, int), int x, int y, int k) {        \
    struct ct_pt p = { x, y }, r = f(p, k), s = f(r, 1);                                           \
    return s.x * 1000 + s.y;                                                                       \
  }                                                                                                \
  double ct_##name##_call_big(double (conv *f)(struct ct_big, int), double a, int k) {             \
    struct ct_big g = { a, a * 2, 3 };                                                             \
    return f(g, k) + f(g, 0) * 1000;                                                               \
  }
#if defined(__i386__)
CT_CONVENTION(__attribute__((cdecl)), cdecl)
CT_CONVENTION(__attribute__((stdcall)), stdcall)
CT_CONVENTION(__attribute__((fastcall)), fastcall)
CT_CONVENTION(__attribute__((thiscall)), thiscall)
#else
CT_CONVENTION(, cdecl)
CT_CONVENTION(, stdcall)
CT_CONVENTION(, fastcall)
CT_CONVENTION(, thiscall)
#endif
/* A function pointer C keeps after the call that handed it over (a registration). */
static int (*ct_kept)(int);
void ct_keep(int (*f)(int)) { ct_kept = f; }
int ct_call_kept(int x) { return ct_kept(x); }
/* Records aligned beyond 16 by value: on x86-64 System V they go on the stack at their own
 * alignment, so the caller must align the stack to 32 / 64 (gcc's caller does `and rsp, -32`).
 * Each adds 1000 when its argument is less aligned than its type; the address goes through an
 * empty asm so the compiler cannot fold the check away by the type's alignment. */
struct ct_al32 { int a; } __attribute__((aligned(32)));
struct ct_al64 { double d[5]; } __attribute__((aligned(64)));
static uintptr_t ct_addr(const void *p) { uintptr_t a; __asm__("" : "=r"(a) : "0"(p)); return a; }
int ct_al32_arg(struct ct_al32 x, int y) { return x.a * 10 + y + (ct_addr(&x) % 32 ? 1000 : 0); }
double ct_al64_arg(int a, struct ct_al64 x, int b) { return x.d[0] + x.d[4] + a + b + (ct_addr(&x) % 64 ? 1000 : 0); }
/* Calls f with the stack lowered by 16 * n bytes, so the stubs f calls are entered at each
 * alignment of the stack. */
void ct_call_lowered(int n, void (*f)(void)) {
  volatile char *p = __builtin_alloca(16 * (unsigned)n + 1);
  p[0] = 0;
  f();
  p[0] = 1;
}

/* Unwinding through generated code (tests/lua/unwind.lua): a callback called through two C
 * frames (neither a tail call, so both stay on the stack), and a count of the frames a C
 * backtrace taken below a stub walks (libgcc's unwinder; not on Windows). */
__attribute__((noinline)) static int ct_two_frames_inner(int (*cb)(int), int x) { return cb(x) + 1; }
int calltest_two_frames(int (*cb)(int)) { return ct_two_frames_inner(cb, 40) + 1; }
#if !defined(_WIN32)
#include <unwind.h>
static _Unwind_Reason_Code ct_count_frame(struct _Unwind_Context *ctx, void *count) {
  (void)ctx;
  ++*(int *)count;
  return _URC_NO_REASON;
}
int calltest_backtrace_frames(void) {
  int count = 0;
  _Unwind_Backtrace(ct_count_frame, &count);
  return count;
}
#endif

/* Vectors by value (issue 17): x86-64 SysV passes a 16-byte vector in one xmm register
 * (SSE+SSEUP), an 8-byte one in an xmm register, a 4-byte integer one in a GPR. */
typedef float ct_v4sf __attribute__((vector_size(16)));
typedef double ct_v2df __attribute__((vector_size(16)));
typedef int ct_v2si __attribute__((vector_size(8)));
typedef short ct_v2hi __attribute__((vector_size(4)));
struct ct_vrec { ct_v4sf v; };
union ct_vlong { ct_v4sf v; long long l; };
ct_v4sf ct_v4sf_add(ct_v4sf a, ct_v4sf b) { return a + b; }
ct_v4sf ct_v4sf_mix(int k, ct_v4sf a, double d, ct_v4sf b) { return a * (float)k + b * (float)d; }
ct_v2si ct_v2si_add(ct_v2si a, ct_v2si b) { return a + b; }
ct_v2hi ct_v2hi_neg(ct_v2hi a) { return -a; }
double ct_v2df_nine(ct_v2df a, ct_v2df b, ct_v2df c, ct_v2df d, ct_v2df e, ct_v2df f, ct_v2df g, ct_v2df h, ct_v2df i) {
  ct_v2df s = a + b * 2 + c * 3 + d * 4 + e * 5 + f * 6 + g * 7 + h * 8 + i * 9;
  return s[0] + s[1] * 1000;
}
struct ct_vrec ct_vrec_rev(struct ct_vrec r) { struct ct_vrec o = { { r.v[3], r.v[2], r.v[1], r.v[0] } }; return o; }
float ct_vlong_get(union ct_vlong u, int i) { return u.v[i]; }
union ct_vlong ct_vlong_make(long long l, float hi) { union ct_vlong u; u.l = l; u.v[2] = hi; u.v[3] = -hi; return u; }
ct_v4sf ct_call_v4sf(ct_v4sf (*f)(ct_v4sf, ct_v4sf), float x) {
  ct_v4sf a = { x, x + 1, x + 2, x + 3 }, b = { 10, 20, 30, 40 };
  return f(a, b);
}
ct_v2si ct_call_v2si(ct_v2si (*f)(ct_v2si, ct_v2hi), int a, int b) { ct_v2si v = { a, b }; ct_v2hi h = { 7, -8 }; return f(v, h); }
double ct_call_v2df_nine(double (*f)(ct_v2df, ct_v2df, ct_v2df, ct_v2df, ct_v2df, ct_v2df, ct_v2df, ct_v2df, ct_v2df)) {
  ct_v2df v[9];
  for (int i = 0; i < 9; i++) { v[i][0] = i + 1; v[i][1] = -(i + 1); }
  return f(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
}
struct ct_vrec ct_call_vrec(struct ct_vrec (*f)(struct ct_vrec), float x) { struct ct_vrec r = { { x, 2 * x, 3 * x, 4 * x } }; return f(r); }
float ct_call_vlong(union ct_vlong (*f)(long long), long long l) { union ct_vlong u = f(l); return u.v[2] * 10 + (float)(u.l == l); }

/* tests/lua/cparse_gaps.lua: a 4-byte pointer (__ptr32) and a bool of more than one byte
 * (_Bool int) are passed and returned as the unsigned integer of their size, so these take
 * and return the integers the Lua side declares as those types: the compiler is the oracle. */
unsigned int cg_p32_next(unsigned int p) { return p + 4; }
unsigned int cg_p32_call(unsigned int (*f)(unsigned int), unsigned int p) { return f(p); }
int cg_wb_not(int b) { return !b; }
int cg_wb_raw(int x) { return x; }
int cg_wb_call(int (*f)(int), int x) { return f(x); }
short cg_wb16_raw(short x) { return x; }
short cg_wb16_call(short (*f)(short), short x) { return f(x); }
long long cg_wb64_raw(long long x) { return x; }
long long cg_wb64_call(long long (*f)(long long), long long x) { return f(x); }

/* tests/lua/cparse_gaps.lua: 16-byte integers (mode(TI), gcc's __int128) by value, x86-64
 * only (gcc -m32 has none): SysV passes them in a register pair or 16-aligned on the stack,
 * never split; mingw by reference, returned in xmm0. */
#if defined(__x86_64__)
__int128 cg_i128_shl(long long x, int n) { return (__int128)x << n; }
__int128 cg_i128_add(__int128 a, int b, __int128 c) { return a + b + c; }
unsigned long long cg_i128_hi(__int128 a) { return (unsigned long long)((unsigned __int128)a >> 64); }
/* Five longs leave one register: x goes whole to the stack, f takes the last register. */
long long cg_i128_late(long long a, long long b, long long c, long long d, long long e, __int128 x, long long f) {
  return a + b + c + d + e + f + (long long)(x >> 64) * 1000;
}
__int128 cg_i128_call(__int128 (*f)(__int128, int), __int128 a, int b) { return f(a, b) + 1; }
/* A struct holding one goes by the record rules: SysV its two INTEGER eightbytes (16-aligned
 * on the stack), mingw by reference and returned through a hidden pointer. */
struct cg_i128s { __int128 v; };
struct cg_i128s cg_i128s_twice(struct cg_i128s s, int k) { s.v = s.v * 2 + k; return s; }
long long cg_i128s_late(long long a, long long b, long long c, long long d, long long e, struct cg_i128s s, long long f) {
  return a + b + c + d + e + f + (long long)(s.v >> 64) * 1000;
}
struct cg_i128s cg_i128s_call(struct cg_i128s (*f)(struct cg_i128s, int), struct cg_i128s s, int k) {
  struct cg_i128s r = f(s, k);
  r.v += 1;
  return r;
}
#endif
