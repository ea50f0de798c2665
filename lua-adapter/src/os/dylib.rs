//! The dynamic loader: opening a library, finding a symbol in it or in the default namespace
//! (what `ffi.C` searches), closing it. unix: `dlopen`/`dlsym`/`dlclose`. Windows:
//! `LoadLibraryExA`/`GetProcAddress`/`FreeLibrary`, and the default namespace is a list of
//! modules searched in LuaJIT's order (`lj_clib.c`, `clib_getsym`): the executable, the module
//! holding this code (the `ffi` DLL when loaded as one), the C runtime it links, then
//! kernel32, user32 and gdi32.
//!
//! A failure carries the loader's own words (`dlerror()`'s text; on Windows LuaJIT's
//! `cannot load module '...': ` or `cannot resolve symbol '...': ` and the system's message
//! for `GetLastError()`), `None` when it gave none.

use std::ffi::{c_void, CStr};

/// The handle of the default namespace: every symbol of the running process
/// (`RTLD_DEFAULT`; Windows: the module list of the [module docs](self)).
#[cfg(unix)]
pub const DEFAULT: *mut c_void = libc::RTLD_DEFAULT;
/// The handle of the default namespace: every symbol of the running process
/// (`RTLD_DEFAULT`; Windows: the module list of the [module docs](self)). No module has a
/// null handle.
#[cfg(windows)]
pub const DEFAULT: *mut c_void = std::ptr::null_mut();

/// Opens `file`; with `global`, its symbols join the default namespace (unix; Windows has no
/// such thing and ignores it, as LuaJIT does).
pub fn open(file: &CStr, global: bool) -> Result<*mut c_void, Option<String>> {
    sys::open(file, global)
}

/// The address of `symbol` in the library `handle` (from [`open`], or [`DEFAULT`]).
///
/// # Safety
/// `handle` is [`DEFAULT`] or a handle [`open`] returned that is not closed yet.
pub unsafe fn symbol(handle: *mut c_void, symbol: &CStr) -> Result<*mut c_void, Option<String>> {
    // SAFETY: as this function's contract.
    unsafe { sys::symbol(handle, symbol) }
}

/// Gives back one reference to a library [`open`] returned.
///
/// # Safety
/// `handle` came from [`open`], and no code or data of the library is used afterwards unless
/// another reference to it is still held.
pub unsafe fn close(handle: *mut c_void) {
    // SAFETY: as this function's contract.
    unsafe { sys::close(handle) }
}

#[cfg(unix)]
mod sys {
    use std::ffi::{c_void, CStr};

    /// `dlerror()`'s text, if the last dl call failed with one. dlerror's state is per
    /// thread, and nothing in between calls the dl functions.
    fn dlerror_text() -> Option<String> {
        // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl call.
        unsafe {
            let e = libc::dlerror();
            (!e.is_null()).then(|| CStr::from_ptr(e).to_string_lossy().into_owned())
        }
    }

    pub(super) fn open(file: &CStr, global: bool) -> Result<*mut c_void, Option<String>> {
        let flags = libc::RTLD_LAZY | if global { libc::RTLD_GLOBAL } else { libc::RTLD_LOCAL };
        // SAFETY: dlopen with a valid C string.
        let h = unsafe { libc::dlopen(file.as_ptr(), flags) };
        if h.is_null() {
            return Err(dlerror_text());
        }
        Ok(h)
    }

    pub(super) unsafe fn symbol(handle: *mut c_void, symbol: &CStr) -> Result<*mut c_void, Option<String>> {
        // SAFETY: dlsym on a live handle or RTLD_DEFAULT (caller's contract); dlerror is
        // cleared first so that its text afterwards is this call's.
        let p = unsafe {
            libc::dlerror();
            libc::dlsym(handle, symbol.as_ptr())
        };
        if p.is_null() {
            return Err(dlerror_text());
        }
        Ok(p)
    }

    pub(super) unsafe fn close(handle: *mut c_void) {
        // SAFETY: a handle dlopen returned (caller's contract).
        unsafe { libc::dlclose(handle) };
    }
}

#[cfg(windows)]
mod sys {
    use std::ffi::{c_void, CStr};
    use std::sync::OnceLock;

    use windows_sys::Win32::Foundation::{FreeLibrary, GetLastError, HMODULE};
    use windows_sys::Win32::System::Diagnostics::Debug::{
        FormatMessageA, FORMAT_MESSAGE_FROM_SYSTEM, FORMAT_MESSAGE_IGNORE_INSERTS,
    };
    use windows_sys::Win32::System::LibraryLoader::{
        GetModuleHandleExA, GetProcAddress, LoadLibraryExA, GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
        GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
    };

    /// The system's message for `GetLastError()`'s code now, without the trailing line break
    /// (empty when it has none, as LuaJIT's `clib_error` leaves it).
    fn last_error_text() -> String {
        // SAFETY: GetLastError has no preconditions; FormatMessageA writes at most
        // `buf.len()` bytes into `buf` and returns how many.
        let text = unsafe {
            let code = GetLastError();
            let mut buf = [0u8; 256];
            let n = FormatMessageA(
                FORMAT_MESSAGE_IGNORE_INSERTS | FORMAT_MESSAGE_FROM_SYSTEM,
                std::ptr::null(),
                code,
                0,
                buf.as_mut_ptr(),
                buf.len() as u32,
                std::ptr::null(),
            );
            String::from_utf8_lossy(&buf[..(n as usize).min(buf.len())]).into_owned()
        };
        text.trim_end().to_string()
    }

    pub(super) fn open(file: &CStr, _global: bool) -> Result<*mut c_void, Option<String>> {
        // SAFETY: LoadLibraryExA with a valid C string and no flags is LoadLibraryA.
        let h = unsafe { LoadLibraryExA(file.as_ptr().cast(), std::ptr::null_mut(), 0) };
        if h.is_null() {
            return Err(Some(format!("cannot load module '{}': {}", file.to_string_lossy(), last_error_text())));
        }
        Ok(h)
    }

    /// The modules `ffi.C` searches, in order, resolved once (see the [module docs](super)).
    /// Handles are kept as addresses (a module handle is its base address, shared by every
    /// thread); one that could not be had is left out.
    pub(super) fn default_modules() -> &'static [usize] {
        static MODULES: OnceLock<Vec<usize>> = OnceLock::new();
        MODULES.get_or_init(|| {
            let containing = |addr: *const u8| {
                let mut h: HMODULE = std::ptr::null_mut();
                // SAFETY: FROM_ADDRESS takes any address and writes the module holding it, or
                // nothing; UNCHANGED_REFCOUNT takes no reference (these modules stay loaded
                // for the life of the process).
                unsafe {
                    GetModuleHandleExA(
                        GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                        addr,
                        &mut h,
                    )
                };
                h
            };
            let mut exe: HMODULE = std::ptr::null_mut();
            // SAFETY: a null name asks for the executable's handle, written to `exe`.
            unsafe { GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT, std::ptr::null(), &mut exe) };
            let this_module = containing(default_modules as *const u8);
            let crt = containing(crate::os::errno::crt_data_address());
            let mut modules = vec![exe, this_module, crt];
            for name in [c"kernel32.dll", c"user32.dll", c"gdi32.dll"] {
                // SAFETY: LoadLibraryExA with a valid C string; the reference is kept for the
                // life of the process, as LuaJIT keeps it.
                modules.push(unsafe { LoadLibraryExA(name.as_ptr().cast(), std::ptr::null_mut(), 0) });
            }
            let mut seen = Vec::new();
            for h in modules {
                let h = h as usize;
                if h != 0 && !seen.contains(&h) {
                    seen.push(h);
                }
            }
            seen
        })
    }

    pub(super) unsafe fn symbol(handle: *mut c_void, symbol: &CStr) -> Result<*mut c_void, Option<String>> {
        let found = if handle.is_null() {
            default_modules().iter().find_map(|&h| {
                // SAFETY: `h` is a module that stays loaded (default_modules).
                unsafe { GetProcAddress(h as HMODULE, symbol.as_ptr().cast()) }
            })
        } else {
            // SAFETY: a live handle LoadLibraryExA returned (caller's contract).
            unsafe { GetProcAddress(handle, symbol.as_ptr().cast()) }
        };
        match found {
            Some(f) => Ok(f as *mut c_void),
            None => Err(Some(format!("cannot resolve symbol '{}': {}", symbol.to_string_lossy(), last_error_text()))),
        }
    }

    pub(super) unsafe fn close(handle: *mut c_void) {
        // SAFETY: a handle LoadLibraryExA returned (caller's contract).
        unsafe { FreeLibrary(handle) };
    }
}

#[cfg(all(test, windows))]
mod tests {
    use super::*;

    /// The file name of the module at `h`.
    fn module_file(h: usize) -> String {
        let mut buf = [0u8; 260];
        // SAFETY: writes at most `buf.len()` bytes of the module's path into `buf`.
        let n = unsafe {
            windows_sys::Win32::System::LibraryLoader::GetModuleFileNameA(h as _, buf.as_mut_ptr(), buf.len() as u32)
        };
        let path = String::from_utf8_lossy(&buf[..n as usize]).to_ascii_lowercase();
        path.rsplit(['\\', '/']).next().unwrap_or("").to_string()
    }

    #[test]
    fn the_default_namespace_searches_luajits_modules_in_order() {
        let names: Vec<String> = sys::default_modules().iter().map(|&h| module_file(h)).collect();
        // The tests run as an executable: it is also "the module holding this code".
        assert!(names[0].ends_with(".exe"), "{names:?}");
        assert_eq!(names[1..], ["msvcrt.dll", "kernel32.dll", "user32.dll", "gdi32.dll"], "{names:?}");
    }

    #[test]
    fn symbols_resolve_through_the_default_namespace_and_failures_say_why() {
        // SAFETY: DEFAULT is always a valid handle.
        unsafe {
            assert!(symbol(DEFAULT, c"GetLastError").is_ok());
            assert!(symbol(DEFAULT, c"fprintf").is_ok());
            assert!(symbol(DEFAULT, c"CreateWindowExA").is_ok());
            let e = symbol(DEFAULT, c"no_such_symbol_here").unwrap_err().unwrap();
            assert!(e.starts_with("cannot resolve symbol 'no_such_symbol_here': "), "{e}");
        }
        let e = open(c"no_such_library.dll", false).unwrap_err().unwrap();
        assert!(e.starts_with("cannot load module 'no_such_library.dll': "), "{e}");
        assert!(e.len() > "cannot load module 'no_such_library.dll': ".len(), "the system's words: {e}");
    }
}
