//! The C library's `errno` of the calling thread, which C calls set and `ffi.errno` reports.

use std::os::raw::c_int;

/// The C library's function returning the address of the calling thread's `errno`, where it
/// has one: what `set_os_errno`/`os_errno` use, and what stubs with inline errno handling call
/// (`Helper::ErrnoLocation`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const ERRNO_LOCATION: Option<unsafe extern "C" fn() -> *mut c_int> = Some(libc::__errno_location);
#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
pub(crate) const ERRNO_LOCATION: Option<unsafe extern "C" fn() -> *mut c_int> = Some(libc::__error);
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd"
)))]
pub(crate) const ERRNO_LOCATION: Option<unsafe extern "C" fn() -> *mut c_int> = None;

/// Whether stubs may restore and save `errno` inline (the C library has a
/// function returning the address of `errno`, the private `ERRNO_LOCATION`).
pub const ERRNO_INLINE: bool = ERRNO_LOCATION.is_some();

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
