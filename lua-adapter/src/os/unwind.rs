//! Unwind information for generated code, handed to the platform's unwinder for as long as
//! the code lives, so Lua errors (longjmp, which unwinds through SEH on Win64), backtraces,
//! C++ exceptions and Rust panics crossing a stub or thunk frame find its caller:
//! - x86-64 System V and i386 Linux: one CIE+FDE per stub or thunk, registered with libgcc's
//!   `__register_frame` (removed with `__deregister_frame` when the code is freed).
//! - x86-64 Windows: the `UNWIND_INFO` is placed right after the code in the same arena chunk
//!   ([`append_in_place`]; `RtlAddFunctionTable` takes 32-bit offsets from the code), and one
//!   `RUNTIME_FUNCTION` per stub or thunk is added with `RtlAddFunctionTable`.
//!
//! Elsewhere (32-bit Windows has no table-based unwinding) nothing is registered. The
//! description comes from the backend ([`FrameUnwind`]); this file encodes and registers it.

use abi_model::unwind::{FrameUnwind, UnwindError};

/// Why a description could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// The backend's description does not encode (a bug).
    Describe(UnwindError),
    /// The system refused the table (`RtlAddFunctionTable` returned FALSE: out of memory).
    Refused(&'static str),
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::Describe(e) => write!(f, "{e}"),
            RegisterError::Refused(what) => write!(f, "{what} failed"),
        }
    }
}

impl std::error::Error for RegisterError {}

/// A registered description: unregistered when dropped. What the unwinder reads lives exactly
/// as long as the registration.
#[derive(Debug)]
pub struct Registration {
    /// When it was made, in this process's order of registrations ([`Registration::order`]).
    order: u64,
    /// The `.eh_frame` bytes (CIE, FDE, zero terminator), in words so the length fields are
    /// aligned as libgcc reads them.
    #[cfg(all(unix, any(target_arch = "x86_64", target_arch = "x86")))]
    eh_frame: Box<[u64]>,
    /// The one-entry function table.
    #[cfg(all(windows, target_arch = "x86_64"))]
    table: Box<RuntimeFunction>,
}

#[cfg(all(unix, any(target_arch = "x86_64", target_arch = "x86")))]
extern "C" {
    /// libgcc (`unwind-dw2-fde.c`): adds the `.eh_frame` data at `begin` (a run of CIEs and
    /// FDEs ending with a zero length word) to the objects the unwinder searches.
    fn __register_frame(begin: *const u8);
    /// Removes what `__register_frame(begin)` added.
    fn __deregister_frame(begin: *const u8);
}

/// `RUNTIME_FUNCTION`: offsets from the table's base address.
#[cfg(all(windows, target_arch = "x86_64"))]
#[repr(C)]
#[derive(Debug)]
struct RuntimeFunction {
    begin: u32,
    end: u32,
    unwind_data: u32,
}

#[cfg(all(windows, target_arch = "x86_64"))]
#[link(name = "kernel32")]
extern "system" {
    fn RtlAddFunctionTable(table: *const RuntimeFunction, count: u32, base: u64) -> u8;
    fn RtlDeleteFunctionTable(table: *const RuntimeFunction) -> u8;
}

/// Appends to `bytes` (a function's code) what the unwinder must find beside it: on Win64
/// padding to 4 bytes and the `UNWIND_INFO`; nothing elsewhere.
pub fn append_in_place(bytes: &mut Vec<u8>, unwind: &FrameUnwind) -> Result<(), RegisterError> {
    #[cfg(all(windows, target_arch = "x86_64"))]
    {
        let info = unwind.win64_unwind_info().map_err(RegisterError::Describe)?;
        // int3 up to the UNWIND_INFO, which is DWORD-aligned.
        bytes.resize(bytes.len().next_multiple_of(4), 0xCC);
        bytes.extend_from_slice(&info);
    }
    let _ = (bytes, unwind);
    Ok(())
}

/// Registers the frame description of the `code_len` bytes of code at `addr` (followed, on
/// Win64, by what [`append_in_place`] added).
pub fn register(addr: usize, code_len: usize, unwind: &FrameUnwind) -> Result<Registration, RegisterError> {
    #[cfg(all(unix, any(target_arch = "x86_64", target_arch = "x86")))]
    {
        let bytes = unwind.eh_frame(addr as u64, code_len as u64).map_err(RegisterError::Describe)?;
        let mut words = vec![0u64; bytes.len().div_ceil(8)].into_boxed_slice();
        for (word, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
            let mut b = [0; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            *word = u64::from_ne_bytes(b);
        }
        // SAFETY: `words` holds a complete `.eh_frame` run (CIE, FDE, zero terminator) that
        // `eh_frame` encoded for exactly this code's addresses; it stays allocated and
        // unmoved (a boxed slice) until `Drop` deregisters it.
        unsafe { __register_frame(words.as_ptr().cast()) };
        Ok(Registration { order: next_order(), eh_frame: words })
    }
    #[cfg(all(windows, target_arch = "x86_64"))]
    {
        // Encoded beside the code by `append_in_place`.
        let _ = unwind;
        let table = Box::new(RuntimeFunction {
            begin: 0,
            end: code_len as u32,
            unwind_data: code_len.next_multiple_of(4) as u32,
        });
        // SAFETY: the UNWIND_INFO sits at `addr + unwind_data` (put there by
        // `append_in_place` and committed with the code); `table` stays allocated and
        // unmoved until `Drop` deletes it, and the code outlives the registration.
        let added = unsafe { RtlAddFunctionTable(&*table, 1, addr as u64) };
        if added == 0 {
            return Err(RegisterError::Refused("RtlAddFunctionTable"));
        }
        Ok(Registration { order: next_order(), table })
    }
    #[cfg(not(any(
        all(unix, any(target_arch = "x86_64", target_arch = "x86")),
        all(windows, target_arch = "x86_64")
    )))]
    {
        let _ = (addr, code_len);
        unwind.validate().map_err(RegisterError::Describe)?;
        Ok(Registration { order: next_order() })
    }
}

/// The next registration's [`Registration::order`].
fn next_order() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Registration {
    /// Larger for a later registration. libgcc keeps registered frames in a list, newest
    /// first, which deregistering searches: dropping many registrations newest first makes
    /// each search end at the list's head instead of walking it.
    pub fn order(&self) -> u64 {
        self.order
    }
}

#[cfg(test)]
thread_local! {
    /// The orders of the registrations dropped on this thread, for tests.
    pub(crate) static DROPPED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Drop for Registration {
    fn drop(&mut self) {
        #[cfg(test)]
        DROPPED.with_borrow_mut(|d| d.push(self.order));
        #[cfg(all(unix, any(target_arch = "x86_64", target_arch = "x86")))]
        // SAFETY: these bytes were registered by `register` at this address and have not
        // been deregistered (this runs once).
        unsafe {
            __deregister_frame(self.eh_frame.as_ptr().cast())
        };
        #[cfg(all(windows, target_arch = "x86_64"))]
        // SAFETY: this table was added by `register` and not deleted yet (this runs once).
        unsafe {
            RtlDeleteFunctionTable(&*self.table)
        };
    }
}
