//! Reading memory that may not be mapped, without faulting: what the Lua layout probe
//! (`stack::vm_check`) reads with, since until it has checked a layout it follows pointers
//! read at offsets that layout names, which in a Lua built differently may hold anything.
//!
//! The kernel does the reading, and reports an unreadable address as an error instead of
//! faulting: on Linux `process_vm_readv` of this process (one system call a read); where
//! that is refused (a seccomp filter) and on other Unixes, `write` from the address into a
//! pipe, whose bytes are read back (two); on Windows, `ReadProcessMemory` of the current
//! process. For the probe's few dozen reads per process (~30 µs), never for a hot path.

/// Copies the `buf.len()` bytes at `addr` into `buf` when all of them are readable; `false`
/// (and `buf` unspecified) when any is not, or the check itself cannot be made.
pub fn copy_if_readable(addr: usize, buf: &mut [u8]) -> bool {
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

    /// Whether `process_vm_readv` is known to work (1) or to be refused (2); 0 before the
    /// first read.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    static VM_READV: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

    pub fn copy_if_readable(addr: usize, buf: &mut [u8]) -> bool {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::sync::atomic::Ordering::Relaxed;
            if VM_READV.load(Relaxed) != 2 {
                let local = libc::iovec { iov_base: buf.as_mut_ptr() as *mut c_void, iov_len: buf.len() };
                let remote = libc::iovec { iov_base: addr as *mut c_void, iov_len: buf.len() };
                // SAFETY: the kernel copies `buf.len()` bytes from `addr` in this process into
                // `buf` (which has room for them), reporting unreadable memory as EFAULT or a
                // short count instead of faulting.
                let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
                if n >= 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT) {
                    VM_READV.store(1, Relaxed);
                    return n == buf.len() as isize;
                }
                // EPERM or ENOSYS: a sandbox's filter; the pipe from now on.
                VM_READV.store(2, Relaxed);
            }
        }
        pipe_copy(addr, buf)
    }

    pub(super) fn pipe_copy(addr: usize, buf: &mut [u8]) -> bool {
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
    fn the_pipe_fallback_copies_and_refuses_alike() {
        let v: u64 = 0x0102_0304_0506_0708;
        let mut buf = [0u8; 8];
        assert!(imp::pipe_copy(&v as *const u64 as usize, &mut buf));
        assert_eq!(u64::from_ne_bytes(buf), v);
        assert!(!imp::pipe_copy(8, &mut buf));
        assert!(!imp::pipe_copy(usize::MAX - 4, &mut buf[..4]));
        // Nothing of the failed reads is left in the pipe.
        let w: u32 = 0xCAFE_F00D;
        assert!(imp::pipe_copy(&w as *const u32 as usize, &mut buf[..4]));
        assert_eq!(u32::from_ne_bytes(buf[..4].try_into().unwrap()), w);
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
            let released = read_if_readable::<u64>(p as usize);
            // Windows refuses both reads (ERROR_PARTIAL_COPY). Wine's ReadProcessMemory of its
            // own process copies a no-access page, and reads a released one (which Wine keeps
            // reserved) as zeros: there the test can only ask that nothing faulted.
            if !under_wine() {
                assert_eq!((no_access, released), (None, None));
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
            libc::munmap(p, page);
            assert_eq!(read_if_readable::<u64>(p as usize), None);
        }
    }
}
