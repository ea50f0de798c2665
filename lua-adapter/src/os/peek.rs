//! Reading memory that may not be mapped, without faulting: what the Lua layout probe
//! (`stack::vm_check`) reads with, since until it has checked a layout it follows pointers
//! read at offsets that layout names, which in a Lua built differently may hold anything.
//!
//! The kernel does the reading, and reports an unreadable address as an error instead of
//! faulting: on Unix, `write` from the address into a pipe, whose bytes are read back (two
//! system calls a read); on Windows, `ReadProcessMemory` of the current process. Not Linux's
//! `process_vm_readv`, one call instead of two: sandboxes filter it as a debugging call
//! (systemd's `@system-service` set leaves it out, and a unit's filter kills the process by
//! default), and the module must load wherever Lua runs. For the probe's dozen or so reads
//! per state, never for a hot path.

/// Copies the `buf.len()` bytes at `addr` into `buf` when all of them are readable; `false`
/// (and `buf` unspecified) when any is not, or the check itself cannot be made.
fn copy_if_readable(addr: usize, buf: &mut [u8]) -> bool {
    imp::copy_if_readable(addr, buf)
}

/// The `T` at `addr` (any alignment) when its bytes are readable.
pub fn read_if_readable<T: Copy>(addr: usize) -> Option<T> {
    let mut v = std::mem::MaybeUninit::<T>::uninit();
    // SAFETY: the slice covers exactly `v`'s bytes, which live for the borrow.
    let buf = unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, std::mem::size_of::<T>()) };
    // SAFETY: `copy_if_readable` wrote every byte of `v` when it returns true; the callers read
    // plain integer and float types, for which any bytes are a value.
    copy_if_readable(addr, buf).then(|| unsafe { v.assume_init() })
}

#[cfg(unix)]
mod imp {
    use std::os::raw::c_void;
    use std::sync::Mutex;

    /// The process's probe pipe (read end, write end), both ends non-blocking and
    /// close-on-exec, made by the first read; `None` if it could not be made. The lock keeps
    /// one thread's write and read-back together.
    static PIPE: Mutex<Option<Option<[libc::c_int; 2]>>> = Mutex::new(None);

    fn make_pipe() -> Option<[libc::c_int; 2]> {
        let mut fds = [0; 2];
        // SAFETY: `pipe` writes two descriptors into the array it is given.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return None;
        }
        for fd in fds {
            // SAFETY: fcntl on descriptors this function just made.
            unsafe {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Some(fds)
    }

    pub fn copy_if_readable(addr: usize, buf: &mut [u8]) -> bool {
        // A pipe holds at least 4 KiB; the probe reads words.
        if buf.len() > 4096 {
            return false;
        }
        let mut guard = PIPE.lock().unwrap_or_else(|e| e.into_inner());
        let Some([rd, wr]) = *guard.get_or_insert_with(make_pipe) else { return false };
        // SAFETY: `write` reads `buf.len()` bytes at `addr` in the kernel, which reports an
        // unreadable address as EFAULT rather than faulting; the pipe is empty before it (every
        // byte written is read back below, under the lock).
        let wrote = unsafe { libc::write(wr, addr as *const c_void, buf.len()) };
        if wrote <= 0 {
            return false;
        }
        // SAFETY: reads back into `buf`, which has room for the `wrote` bytes written.
        let got = unsafe { libc::read(rd, buf.as_mut_ptr() as *mut c_void, wrote as usize) };
        got == wrote && wrote as usize == buf.len()
    }
}

#[cfg(windows)]
mod imp {
    use windows_sys::Win32::System::Diagnostics::Debug::ReadProcessMemory;
    use windows_sys::Win32::System::Threading::GetCurrentProcess;

    pub fn copy_if_readable(addr: usize, buf: &mut [u8]) -> bool {
        let mut n = 0usize;
        // SAFETY: ReadProcessMemory on this process copies `buf.len()` bytes from `addr` into
        // `buf` (which has room for them), failing instead of faulting on unreadable memory.
        let ok = unsafe {
            ReadProcessMemory(GetCurrentProcess(), addr as *const _, buf.as_mut_ptr() as *mut _, buf.len(), &mut n)
        };
        ok != 0 && n == buf.len()
    }
}

#[cfg(not(any(unix, windows)))]
mod imp {
    /// No safe way known here: nothing counts as readable, and the probe refuses every layout.
    pub fn copy_if_readable(_addr: usize, _buf: &mut [u8]) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_memory_is_copied_and_unmapped_or_null_memory_is_refused() {
        let v: u64 = 0x1122_3344_5566_7788;
        assert_eq!(read_if_readable::<u64>(&v as *const u64 as usize), Some(v));
        // Unaligned, inside a buffer.
        let bytes = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(read_if_readable::<u32>(bytes.as_ptr() as usize + 1), Some(u32::from_le_bytes([2, 3, 4, 5])));
        // The checker fed wrong answers: the null page, and the top of the address space.
        assert_eq!(read_if_readable::<usize>(0), None);
        assert_eq!(read_if_readable::<usize>(8), None);
        assert_eq!(read_if_readable::<u32>(usize::MAX - 16), None);
        // A failed read leaves nothing behind in the pipe: the next one reads its own bytes.
        let w: u16 = 0xBEEF;
        assert_eq!(read_if_readable::<u16>(&w as *const u16 as usize), Some(w));
    }

    #[cfg(unix)]
    #[test]
    fn a_page_without_read_access_is_refused() {
        // SAFETY: maps, protects and unmaps one anonymous page this test owns.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
            let p = libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            (p as *mut u64).write(42);
            assert_eq!(read_if_readable::<u64>(p as usize), Some(42));
            libc::mprotect(p, page, libc::PROT_NONE);
            assert_eq!(read_if_readable::<u64>(p as usize), None);
            // (Not read again once unmapped: another test's thread may map the address anew.
            // Unmapped memory is the null page's and the top of the address space's case.)
            libc::munmap(p, page);
        }
    }

    #[cfg(windows)]
    #[test]
    fn a_page_without_read_access_is_refused() {
        use windows_sys::Win32::System::Memory as mem;
        // SAFETY: reserves, commits, protects and frees one page this test owns.
        unsafe {
            let p = mem::VirtualAlloc(std::ptr::null(), 4096, mem::MEM_RESERVE | mem::MEM_COMMIT, mem::PAGE_READWRITE);
            assert!(!p.is_null());
            (p as *mut u64).write(42);
            assert_eq!(read_if_readable::<u64>(p as usize), Some(42));
            let mut old = 0;
            assert_ne!(mem::VirtualProtect(p, 4096, mem::PAGE_NOACCESS, &mut old), 0);
            let no_access = read_if_readable::<u64>(p as usize);
            mem::VirtualFree(p, 0, mem::MEM_RELEASE);
            // Windows refuses the read (ERROR_PARTIAL_COPY). Wine's ReadProcessMemory of its
            // own process copies a no-access page: there the test can only ask that nothing
            // faulted. (Not read once released: another test's thread may reuse the address.)
            if !under_wine() {
                assert_eq!(no_access, None);
            }
        }
    }

    #[cfg(windows)]
    fn under_wine() -> bool {
        use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
        // SAFETY: looks up an export of the loaded ntdll by NUL-terminated names.
        unsafe {
            let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr() as *const u8);
            !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr() as *const u8).is_some()
        }
    }
}
