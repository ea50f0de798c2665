/* Tiny freestanding fixture for emu-harness's own tests (engine + image loader).
 * No libc, no main: every function is called directly by the test under the emulator.
 * build.sh compiles it for the four targets; the binaries are committed. */

#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT
#endif

/* Written by record(); the test reads it back from emulated memory. */
EXPORT unsigned int words[4];

EXPORT int add3(int a, int b, int c) { return a + b + c; }

/* i386: returned in st0. x86-64: returned in xmm0. */
EXPORT double scale(double x, int k) { return x * k; }

EXPORT float halve(float x) { return x * 0.5f; }

/* Stores v, ~v, v+n and n into words[] and returns the address of words. */
EXPORT unsigned int *record(unsigned int v, unsigned int n)
{
    words[0] = v;
    words[1] = ~v;
    words[2] = v + n;
    words[3] = n;
    return words;
}

#if defined(__i386__)
/* Callee-popped conventions: mingw decorates these as _sub2@8 and @fsub2@8. */
EXPORT int __attribute__((stdcall)) sub2(int a, int b) { return a - b; }
EXPORT int __attribute__((fastcall)) fsub2(int a, int b) { return a - b; }
#endif
