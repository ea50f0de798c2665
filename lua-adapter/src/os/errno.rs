//! The C library's `errno` of the calling thread, which C calls set and `ffi.errno` reports,
//! and on Windows the thread's `GetLastError()` code, which the module keeps for the caller
//! across its own work between C calls as LuaJIT does (`lj_dispatch.h`, `ERRNO_SAVE`: errno
//! and `GetLastError()` are saved and restored around the VM's own work).

use std::os::raw::c_int;

/// The C library's function returning the address of the calling thread's `errno`, where it
/// has one: what `set_os_errno`/`os_errno` use, and what stubs with inline errno handling call
/// (`Helper::ErrnoLocation`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const ERRNO_LOCATION: Option<unsafe extern "C" fn() -> *mut c_int> = Some(libc::__errno_location);
#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
pub(crate) const ERRNO_LOCATION: Option<unsafe extern "C" fn() -> *mut c_int> = Some(libc::__error);
/// Windows: the C runtime's `_errno()`. windows-gnu links msvcrt.dll, the CRT whose `FILE`
/// the vendored Lua's `io` library uses too (mingw builds both), so errno, `FILE *` and
/// `ffi.C`'s CRT functions all belong to one runtime.
#[cfg(windows)]
pub(crate) const ERRNO_LOCATION: Option<unsafe extern "C" fn() -> *mut c_int> = Some(crt::_errno);
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    windows
)))]
pub(crate) const ERRNO_LOCATION: Option<unsafe extern "C" fn() -> *mut c_int> = None;

#[cfg(windows)]
mod crt {
    use std::os::raw::c_int;

    #[cfg_attr(target_env = "gnu", link(name = "msvcrt", kind = "dylib"))]
    extern "C" {
        pub(crate) fn _errno() -> *mut c_int;
        /// The CRT's default file translation mode. A data import is reached through the
        /// import table (`__imp__fmode`), so its address is inside the CRT module itself;
        /// a function's address would be a jump thunk in this module.
        pub(crate) static _fmode: c_int;
    }
}

/// An address inside the C runtime this module links (Windows), for finding its module: what
/// LuaJIT's `clib_getsym` uses too (`&_fmode`).
#[cfg(windows)]
pub(crate) fn crt_data_address() -> *const u8 {
    std::ptr::addr_of!(crt::_fmode).cast()
}

/// Whether stubs may restore and save `errno` inline (the C library has a function returning
/// the address of `errno`, the private `ERRNO_LOCATION`). Not on Windows: there the helpers
/// also save and restore `GetLastError()`, which the inline steps don't.
pub const ERRNO_INLINE: bool = ERRNO_LOCATION.is_some() && !cfg!(windows);

/// `int *luaffi_errno_location(void)` bound where the C library has none (never called:
/// stubs keep errno in helpers there, [`ERRNO_INLINE`]).
pub(crate) unsafe extern "C" fn no_errno_location() -> *mut c_int {
    std::ptr::null_mut()
}

/// Sets the calling thread's `errno`.
pub fn set_os_errno(n: i32) {
    if let Some(location) = ERRNO_LOCATION {
        // SAFETY: the C library's function returns the thread's errno slot.
        unsafe { *location() = n }
    }
}

/// The calling thread's `errno`.
pub fn os_errno() -> i32 {
    match ERRNO_LOCATION {
        // SAFETY: the C library's function returns the thread's errno slot.
        Some(location) => unsafe { *location() },
        None => std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
    }
}

/// The calling thread's `GetLastError()` (Windows; 0 elsewhere). Read it before anything that
/// may call the system, `os_errno` included.
pub fn os_last_error() -> u32 {
    #[cfg(windows)]
    // SAFETY: GetLastError has no preconditions.
    return unsafe { windows_sys::Win32::Foundation::GetLastError() };
    #[cfg(not(windows))]
    0
}

/// Sets the calling thread's `GetLastError()` code (Windows; nothing elsewhere).
pub fn set_os_last_error(code: u32) {
    #[cfg(windows)]
    // SAFETY: SetLastError has no preconditions.
    unsafe {
        windows_sys::Win32::Foundation::SetLastError(code)
    };
    #[cfg(not(windows))]
    let _ = code;
}
