//! The host's preprocessed C library headers go through `cdef` whole, as through LuaJIT's
//! `ffi.cdef` (issue 17 §1): glibc's `stdio.h` redeclares `fscanf` with an `__asm__` label,
//! `stdlib.h`, `string.h`, `zlib.h` and `sqlite3.h` (xtask installs zlib1g-dev and
//! libsqlite3-dev) repeat typedefs and declarations. The headers are the host's, so the test
//! runs where the host is the x86-64 Linux target it parses them for.

use abi_model::cdef::{cdef, CScope};
use abi_model::{Target, TypeTable};
use std::process::Command;

/// `#include <header>` run through the C compiler's preprocessor without line markers.
fn preprocessed(header: &str) -> String {
    preprocessed_with(header, &[])
}

/// [`preprocessed`] with extra compiler flags (`-m32`).
fn preprocessed_with(header: &str, flags: &[&str]) -> String {
    let src = std::env::temp_dir().join(format!(
        "cdef_system_{}_{}{}.c",
        std::process::id(),
        header.replace(['.', '/'], "_"),
        flags.concat()
    ));
    std::fs::write(&src, format!("#include <{header}>\n")).expect("write the include file");
    let out = Command::new("cc")
        .args(["-E", "-P"])
        .args(flags)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cc (install gcc) to preprocess <{header}>: {e}"));
    let _ = std::fs::remove_file(&src);
    assert!(out.status.success(), "cc -E <{header}>: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("preprocessed header is UTF-8")
}

#[test]
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn glibc_zlib_and_sqlite3_headers_go_through_cdef() {
    let mut t = TypeTable::new(Target::X64_SYSV);
    let mut s = CScope::new(&mut t);
    for header in ["stdio.h", "stdlib.h", "string.h", "zlib.h", "sqlite3.h"] {
        let text = preprocessed(header);
        if let Err(e) = cdef(&mut t, &mut s, &text, &[]) {
            panic!("<{header}>: {e}");
        }
        // Twice, as a program including two headers that share declarations does.
        if let Err(e) = cdef(&mut t, &mut s, &text, &[]) {
            panic!("<{header}> again: {e}");
        }
    }
    for f in ["fscanf", "printf", "malloc", "strtol", "memcpy", "strlen", "deflate", "sqlite3_open"] {
        assert!(s.function(f).is_some(), "{f} declared");
    }
    assert!(s.typedef("FILE").is_some());
}

/// The same headers preprocessed for i386 (`cc -m32`, gcc-multilib), as the i686 Linux host
/// of the Lua suite's `headers.lua` sees them, parsed for that target: `long` and pointers
/// are 4 bytes there, and glibc's headers take other branches. zlib.h is refused there:
/// through `<stddef.h>` it declares gcc's i386 `max_align_t`, which has a `__float128`
/// member, a type the model has no rule for (LuaJIT knows no `__float128` either).
#[test]
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn the_i386_headers_go_through_cdef_for_x86_linux() {
    let mut t = TypeTable::new(Target::X86_LINUX);
    let mut s = CScope::new(&mut t);
    for header in ["stdio.h", "stdlib.h", "string.h", "sqlite3.h"] {
        let text = preprocessed_with(header, &["-m32"]);
        if let Err(e) = cdef(&mut t, &mut s, &text, &[]) {
            panic!("<{header}> for i386: {e}");
        }
    }
    let zlib = preprocessed_with("zlib.h", &["-m32"]);
    let e = cdef(&mut t, &mut s, &zlib, &[]).expect_err("i386 zlib.h names __float128").to_string();
    assert!(e.ends_with("'__float128' is not supported: the model has no such floating type"), "{e}");
    let file = s.typedef("FILE").expect("FILE declared");
    let off_t = s.typedef("off_t").expect("off_t declared");
    assert_eq!(t.size_of(off_t.id).unwrap(), 4, "i386 glibc's off_t is a 32-bit long");
    assert!(t.size_of(file.id).unwrap() < 160, "i386's FILE is smaller than x86-64's (216 bytes)");
}
