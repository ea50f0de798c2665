//! Unwind information for generated code, handed to the platform's unwinder for as long as
//! the code lives: on x86-64 System V and i386 Linux, one CIE+FDE per stub or thunk
//! registered with libgcc's `__register_frame` (and removed with `__deregister_frame` when
//! the code is freed), so backtraces, C++ exceptions and Rust panics crossing a stub frame
//! find its caller. The description comes from the backend ([`FrameUnwind`]); this file only
//! encodes and registers it.
//!
//! Win64 (`RtlAddFunctionTable`, with `UNWIND_INFO` placed within 4 GiB of the code) is not
//! done yet: there a [`Registration`] holds nothing.

use abi_model::unwind::{FrameUnwind, UnwindError};

/// A registered description: unregistered when dropped. The bytes live exactly as long as the
/// registration, as `__register_frame` requires.
#[derive(Debug)]
pub struct Registration {
    /// The `.eh_frame` bytes (CIE, FDE, zero terminator), in words so the length fields are
    /// aligned as libgcc reads them.
    #[cfg(all(unix, any(target_arch = "x86_64", target_arch = "x86")))]
    eh_frame: Box<[u64]>,
}

#[cfg(all(unix, any(target_arch = "x86_64", target_arch = "x86")))]
extern "C" {
    /// libgcc (`unwind-dw2-fde.c`): adds the `.eh_frame` data at `begin` (a run of CIEs and
    /// FDEs ending with a zero length word) to the objects the unwinder searches.
    fn __register_frame(begin: *const u8);
    /// Removes what `__register_frame(begin)` added.
    fn __deregister_frame(begin: *const u8);
}

/// Registers the frame description of the `len` bytes of code at `addr`.
pub fn register(addr: usize, len: usize, unwind: &FrameUnwind) -> Result<Registration, UnwindError> {
    #[cfg(all(unix, any(target_arch = "x86_64", target_arch = "x86")))]
    {
        let bytes = unwind.eh_frame(addr as u64, len as u64)?;
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
        Ok(Registration { eh_frame: words })
    }
    #[cfg(not(all(unix, any(target_arch = "x86_64", target_arch = "x86"))))]
    {
        let _ = (addr, len);
        unwind.validate()?;
        Ok(Registration {})
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        #[cfg(all(unix, any(target_arch = "x86_64", target_arch = "x86")))]
        // SAFETY: these bytes were registered by `register` at this address and have not
        // been deregistered (this runs once).
        unsafe {
            __deregister_frame(self.eh_frame.as_ptr().cast())
        };
    }
}
