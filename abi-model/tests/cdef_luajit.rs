//! A realistic header — chunks of zlib.h, the Windows API and libc as people paste them into
//! `ffi.cdef` — parsed on all four targets, with the sizes and offsets each target's compiler
//! gives (the well-known ones: `sizeof(z_stream)` is 112 on x86-64 Linux, 88 on Win64, 56 on
//! 32-bit; `WIN32_FIND_DATAW` is 592 and `OVERLAPPED` 20/32 on Windows; glibc's `struct tm` is
//! 56 and `struct dirent` 280 on x86-64 Linux).

use abi_model::cdef::{cdef, find_member, parse_type, CScope, TagKind};
use abi_model::{Arch, CType, CallConv, Os, Target, TypeTable};

const ZLIB: &str = r#"
/* zlib.h (abridged) */
typedef unsigned char Bytef;
typedef unsigned int uInt;
typedef unsigned long uLong;
typedef void *voidpf;
typedef voidpf (*alloc_func)(voidpf opaque, uInt items, uInt size);
typedef void (*free_func)(voidpf opaque, voidpf address);
struct internal_state;
typedef struct z_stream_s {
    const Bytef *next_in;  // next input byte
    uInt     avail_in;
    uLong    total_in;
    Bytef    *next_out;
    uInt     avail_out;
    uLong    total_out;
    const char *msg;
    struct internal_state *state;
    alloc_func zalloc;
    free_func  zfree;
    voidpf     opaque;
    int     data_type;
    uLong   adler;
    uLong   reserved;
} z_stream;
typedef z_stream *z_streamp;
enum { Z_NO_FLUSH = 0, Z_FINISH = 4, Z_OK = 0, Z_STREAM_END = 1, Z_ERRNO = (-1), Z_BUF_ERROR = (-5),
       Z_DEFAULT_COMPRESSION = (-1), Z_DEFLATED = 8 };
const char *zlibVersion(void);
int deflateInit_(z_streamp strm, int level, const char *version, int stream_size);
int deflate(z_streamp strm, int flush);
int deflateEnd(z_streamp strm);
uLong crc32(uLong crc, const Bytef *buf, uInt len);
"#;

const WINAPI: &str = r#"
typedef unsigned long DWORD;
typedef unsigned short WORD;
typedef int BOOL;
typedef long LONG;
typedef __int64 LONGLONG;
typedef uintptr_t ULONG_PTR;
typedef void *HANDLE;
typedef wchar_t WCHAR;
typedef const WCHAR *LPCWSTR;
typedef union _LARGE_INTEGER {
    struct { DWORD LowPart; LONG HighPart; };
    struct { DWORD LowPart; LONG HighPart; } u;
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;
typedef struct _FILETIME { DWORD dwLowDateTime; DWORD dwHighDateTime; } FILETIME;
typedef struct _SYSTEMTIME {
    WORD wYear, wMonth, wDayOfWeek, wDay, wHour, wMinute, wSecond, wMilliseconds;
} SYSTEMTIME;
#include <windows.h>
"#;

const WINAPI_REST: &str = r#"
typedef struct _WIN32_FIND_DATAW {
    DWORD dwFileAttributes;
    FILETIME ftCreationTime;
    FILETIME ftLastAccessTime;
    FILETIME ftLastWriteTime;
    DWORD nFileSizeHigh;
    DWORD nFileSizeLow;
    DWORD dwReserved0;
    DWORD dwReserved1;
    WCHAR cFileName[260];
    WCHAR cAlternateFileName[14];
} WIN32_FIND_DATAW, *LPWIN32_FIND_DATAW;
typedef struct _OVERLAPPED {
    ULONG_PTR Internal;
    ULONG_PTR InternalHigh;
    union {
        struct { DWORD Offset; DWORD OffsetHigh; };
        void *Pointer;
    };
    HANDLE hEvent;
} OVERLAPPED, *LPOVERLAPPED;
HANDLE __stdcall FindFirstFileW(LPCWSTR lpFileName, LPWIN32_FIND_DATAW lpFindFileData);
BOOL __stdcall QueryPerformanceCounter(PLARGE_INTEGER lpPerformanceCount);
DWORD __stdcall GetLastError(void);
void __stdcall GetSystemTime(SYSTEMTIME *lpSystemTime);
typedef DWORD (__stdcall *LPTHREAD_START_ROUTINE)(void *lpThreadParameter);
"#;

const LIBC: &str = r#"
typedef long time_t;
typedef long suseconds_t;
struct timeval { time_t tv_sec; suseconds_t tv_usec; };
struct tm {
    int tm_sec, tm_min, tm_hour, tm_mday, tm_mon, tm_year, tm_wday, tm_yday, tm_isdst;
    long tm_gmtoff;
    const char *tm_zone;
};
typedef struct { int quot; int rem; } div_t;
typedef struct { long long quot; long long rem; } lldiv_t;
int printf(const char *__restrict fmt, ...) __attribute__((__format__(__printf__, 1, 2)));
void *memcpy(void *__restrict dst, const void *__restrict src, size_t n) __attribute__((__nothrow__, __leaf__));
void qsort(void *base, size_t nmemb, size_t size, int (*compar)(const void *, const void *));
struct sockaddr_in {
    unsigned short sin_family;
    uint16_t sin_port;
    struct in_addr { uint32_t s_addr; } sin_addr;
    unsigned char sin_zero[8];
};
struct pkt {
    uint8_t version : 4, ihl : 4;
    uint8_t tos;
    uint16_t len;
    uint32_t flags : 3, frag : 13, ttl : 8, proto : 8;
} __attribute__((packed));
struct dirent_like {
    unsigned long d_ino;
    long d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[256];
};
extern int errno_value __asm__("errno");
static const int BUFSIZ_ = 8192, EOF_ = -1;
"#;

struct Expected {
    z_stream: (u64, u32),
    z_total_out: u64,
    z_adler: u64,
    large_integer: (u64, u32),
    high_part: u64,
    find_data: u64,
    alt_file_name: u64,
    overlapped: u64,
    overlapped_h_event: u64,
    tm: u64,
    tm_zone: u64,
    timeval: u64,
    lldiv_align: u32,
    dirent: u64,
}

fn expected(target: Target) -> Expected {
    match (target.arch, target.os) {
        // ILP32, double/long long aligned to 4, wchar_t is int (LuaJIT on Linux).
        (Arch::X86, Os::Linux) => Expected {
            z_stream: (56, 4),
            z_total_out: 20,
            z_adler: 48,
            large_integer: (8, 4),
            high_part: 4,
            find_data: 1140,
            alt_file_name: 1084,
            overlapped: 20,
            overlapped_h_event: 16,
            tm: 44,
            tm_zone: 40,
            timeval: 8,
            lldiv_align: 4,
            dirent: 268,
        },
        // ILP32, long long aligned to 8, wchar_t is unsigned short.
        (Arch::X86, Os::Windows) => Expected {
            z_stream: (56, 4),
            z_total_out: 20,
            z_adler: 48,
            large_integer: (8, 8),
            high_part: 4,
            find_data: 592,
            alt_file_name: 564,
            overlapped: 20,
            overlapped_h_event: 16,
            tm: 44,
            tm_zone: 40,
            timeval: 8,
            lldiv_align: 8,
            dirent: 268,
        },
        // LP64: long and DWORD (unsigned long) are 8 bytes.
        (Arch::X86_64, Os::Linux) => Expected {
            z_stream: (112, 8),
            z_total_out: 40,
            z_adler: 96,
            large_integer: (16, 8),
            high_part: 8,
            find_data: 1184,
            alt_file_name: 1128,
            overlapped: 40,
            overlapped_h_event: 32,
            tm: 56,
            tm_zone: 48,
            timeval: 16,
            lldiv_align: 8,
            dirent: 280,
        },
        // LLP64: long stays 4 bytes.
        (Arch::X86_64, Os::Windows) => Expected {
            z_stream: (88, 8),
            z_total_out: 28,
            z_adler: 76,
            large_integer: (8, 8),
            high_part: 4,
            find_data: 592,
            alt_file_name: 564,
            overlapped: 32,
            overlapped_h_event: 24,
            tm: 48,
            tm_zone: 40,
            timeval: 8,
            lldiv_align: 8,
            dirent: 268,
        },
    }
}

fn layout_of(t: &TypeTable, s: &CScope, typedef: &str) -> (u64, u32) {
    let q = s.typedef(typedef).unwrap_or_else(|| panic!("typedef {typedef}"));
    let l = t.layout(q.id).unwrap();
    (l.size, l.align)
}

fn offset_in(t: &TypeTable, record: abi_model::TypeId, member: &str) -> u64 {
    find_member(t, record, member).unwrap_or_else(|| panic!("member {member}")).offset
}

fn conv_of(t: &TypeTable, s: &CScope, name: &str) -> CallConv {
    match t.get(s.function(name).unwrap().ty) {
        CType::Function(f) => f.conv,
        other => panic!("{other:?}"),
    }
}

#[test]
fn header_chunks_parse_with_each_targets_layouts() {
    for target in Target::ALL {
        let mut t = TypeTable::new(target);
        let mut s = CScope::new(&mut t);
        cdef(&mut t, &mut s, ZLIB, &[]).unwrap_or_else(|e| panic!("{target}: zlib: {e}"));
        // An `#include` is an error, as in LuaJIT, and takes the whole chunk back.
        let e = cdef(&mut t, &mut s, WINAPI, &[]).unwrap_err();
        assert_eq!(e.to_string(), "20:2: unexpected symbol near 'include'", "{target}");
        assert!(s.typedef("DWORD").is_none());
        let winapi = WINAPI.replace("#include <windows.h>", "#pragma once");
        cdef(&mut t, &mut s, &winapi, &[]).unwrap_or_else(|e| panic!("{target}: winapi: {e}"));
        cdef(&mut t, &mut s, WINAPI_REST, &[]).unwrap_or_else(|e| panic!("{target}: winapi: {e}"));
        cdef(&mut t, &mut s, LIBC, &[]).unwrap_or_else(|e| panic!("{target}: libc: {e}"));
        let x = expected(target);

        let z = s.typedef("z_stream").unwrap().id;
        assert_eq!(layout_of(&t, &s, "z_stream"), x.z_stream, "{target}");
        assert_eq!(offset_in(&t, z, "total_out"), x.z_total_out, "{target}");
        assert_eq!(offset_in(&t, z, "adler"), x.z_adler, "{target}");
        assert_eq!(s.constant("Z_BUF_ERROR").unwrap().value, -5);
        assert_eq!(s.constant("Z_DEFLATED").unwrap().value, 8);
        let alloc = parse_type(&mut t, &mut s, "alloc_func", &[]).unwrap();
        assert_eq!(t.display(alloc), "void *(*)(void *, unsigned int, unsigned int)");

        let li = s.typedef("LARGE_INTEGER").unwrap().id;
        assert_eq!(layout_of(&t, &s, "LARGE_INTEGER"), x.large_integer, "{target}");
        assert_eq!(offset_in(&t, li, "HighPart"), x.high_part, "{target}");
        assert_eq!(offset_in(&t, li, "QuadPart"), 0);
        assert_eq!(layout_of(&t, &s, "SYSTEMTIME"), (16, 2));
        let fd = s.typedef("WIN32_FIND_DATAW").unwrap().id;
        assert_eq!(layout_of(&t, &s, "WIN32_FIND_DATAW").0, x.find_data, "{target}");
        assert_eq!(offset_in(&t, fd, "cAlternateFileName"), x.alt_file_name, "{target}");
        let ov = s.typedef("OVERLAPPED").unwrap().id;
        assert_eq!(layout_of(&t, &s, "OVERLAPPED").0, x.overlapped, "{target}");
        assert_eq!(offset_in(&t, ov, "hEvent"), x.overlapped_h_event, "{target}");
        assert_eq!(offset_in(&t, ov, "Pointer"), offset_in(&t, ov, "Offset"));
        let stdcall = if target.arch == Arch::X86 { CallConv::Stdcall } else { CallConv::Cdecl };
        assert_eq!(conv_of(&t, &s, "FindFirstFileW"), stdcall, "{target}");
        assert_eq!(conv_of(&t, &s, "GetLastError"), stdcall, "{target}");

        let tm = s.tag(&t, TagKind::Struct, "tm").unwrap();
        assert_eq!(t.size_of(tm).unwrap(), x.tm, "{target}");
        assert_eq!(offset_in(&t, tm, "tm_zone"), x.tm_zone, "{target}");
        let tv = s.tag(&t, TagKind::Struct, "timeval").unwrap();
        assert_eq!(t.size_of(tv).unwrap(), x.timeval, "{target}");
        assert_eq!(layout_of(&t, &s, "lldiv_t"), (16, x.lldiv_align), "{target}");
        assert_eq!(layout_of(&t, &s, "div_t"), (8, 4));
        let sin = s.tag(&t, TagKind::Struct, "sockaddr_in").unwrap();
        assert_eq!((t.size_of(sin).unwrap(), offset_in(&t, sin, "sin_addr")), (16, 4));
        assert!(s.tag(&t, TagKind::Struct, "in_addr").is_some(), "a nested tag is file-scope in C");
        let pkt = s.tag(&t, TagKind::Struct, "pkt").unwrap();
        assert_eq!(t.layout(pkt).map(|l| (l.size, l.align)).unwrap(), (8, 1), "{target}");
        let frag = find_member(&t, pkt, "frag").unwrap().bits.unwrap();
        assert_eq!((frag.bit_offset, frag.width), (35, 13), "{target}");
        let dirent = s.tag(&t, TagKind::Struct, "dirent_like").unwrap();
        assert_eq!(t.size_of(dirent).unwrap(), x.dirent, "{target}");

        let printf = match t.get(s.function("printf").unwrap().ty) {
            CType::Function(f) => f.clone(),
            other => panic!("{other:?}"),
        };
        assert!(printf.variadic && printf.params.len() == 1);
        assert_eq!(s.variable("errno_value").unwrap().asm_name.as_deref(), Some("errno"));
        assert_eq!(s.constant("EOF_").unwrap().value, -1);
        // Pasting the same header again is fine: every declaration is identical.
        cdef(&mut t, &mut s, ZLIB, &[]).unwrap_or_else(|e| panic!("{target}: zlib again: {e}"));
        cdef(&mut t, &mut s, LIBC, &[]).unwrap_or_else(|e| panic!("{target}: libc again: {e}"));
    }
}

#[test]
fn ffi_new_and_cast_style_type_strings() {
    for target in Target::ALL {
        let mut t = TypeTable::new(target);
        let mut s = CScope::new(&mut t);
        cdef(&mut t, &mut s, ZLIB, &[]).unwrap();
        let cases = [
            ("int[?]", "int [?]"),
            ("uint8_t[?]", "unsigned char [?]"),
            ("z_stream[1]", "struct z_stream_s [1]"),
            ("struct z_stream_s *", "struct z_stream_s *"),
            ("int (*)(int)", "int (*)(int)"),
            ("const char *[?]", "const char *[?]"),
            ("double[2][3]", "double [2][3]"),
        ];
        for (text, shown) in cases {
            let q = parse_type(&mut t, &mut s, text, &[]).unwrap_or_else(|e| panic!("{target}: {text}: {e}"));
            assert_eq!(t.display(q), shown, "{target}");
        }
    }
}
