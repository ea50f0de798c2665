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
    let src =
        std::env::temp_dir().join(format!("cdef_system_{}_{}.c", std::process::id(), header.replace(['.', '/'], "_")));
    std::fs::write(&src, format!("#include <{header}>\n")).expect("write the include file");
    let out = Command::new("cc")
        .args(["-E", "-P"])
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
