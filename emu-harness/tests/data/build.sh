#!/bin/sh
# Rebuilds the committed test binaries of emu-harness's own tests from fixture.c and
# needs_loader.c, and records the compiler versions in VERSIONS.txt.
# Needs the Debian packages gcc, gcc-multilib, gcc-mingw-w64-i686, gcc-mingw-w64-x86-64.
# Run from anywhere: sh emu-harness/tests/data/build.sh
set -eu
cd "$(dirname "$0")"

# Freestanding, no unwind tables, no stack protector/CET, no debug info: tiny and
# self-contained (no libc, no __main/___chkstk_ms/memcpy references).
COMMON="-O1 -ffreestanding -fno-asynchronous-unwind-tables -fno-unwind-tables \
-fno-stack-protector -fcf-protection=none -fno-pic -nostdlib -g0"
# ELF: static non-PIE executables (ET_EXEC) at the default base, no entry (-e 0).
ELF="-fno-pie -no-pie -static -Wl,--build-id=none -Wl,-e,0 -Wl,-z,noseparate-code"
# PE: no timestamp (reproducible), no entry point.
PE="-Wl,--no-insert-timestamp -Wl,-e,0"

gcc -m32 $COMMON $ELF -o fixture.elf32 fixture.c
gcc -m64 $COMMON $ELF -o fixture.elf64 fixture.c
# Win32: an executable at the default ImageBase 0x400000 that keeps its COFF symbol table
# (_add3, _sub2@8, @fsub2@8) and also exports every function (add3, sub2@8, @fsub2@8).
i686-w64-mingw32-gcc $COMMON $PE -Wl,--disable-dynamicbase -Wl,--disable-reloc-section \
    -o fixture.pe32.exe fixture.c
# Win64: a stripped DLL at a fixed ImageBase, so the export table is its only symbol source.
x86_64-w64-mingw32-gcc $COMMON $PE -shared -s -Wl,--image-base,0x180000000 \
    -o fixture.pe64.dll fixture.c

# Error paths: a PE importing from kernel32.dll, an ELF shared object with dynamic relocs,
# and one without relocs that needs libc.so.6.
i686-w64-mingw32-gcc $COMMON $PE -s -o needs_loader.pe32.exe needs_loader.c -lkernel32
gcc -m64 -O1 -ffreestanding -fno-asynchronous-unwind-tables -nostdlib -g0 -fPIC -shared \
    -Wl,--build-id=none -Wl,-z,noseparate-code -s -o needs_loader.elf64.so needs_loader.c
gcc -m64 -O1 -ffreestanding -fno-asynchronous-unwind-tables -nostdlib -g0 -fPIC -shared \
    -Wl,--build-id=none -Wl,-z,noseparate-code -s -DWITHOUT_POINTER -o needs_libc.elf64.so \
    needs_loader.c -Wl,--no-as-needed -lc

{
    gcc --version | head -n 1
    i686-w64-mingw32-gcc --version | head -n 1
    x86_64-w64-mingw32-gcc --version | head -n 1
    ld --version | head -n 1
    i686-w64-mingw32-ld --version | head -n 1
    x86_64-w64-mingw32-ld --version | head -n 1
} > VERSIONS.txt
