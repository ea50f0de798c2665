//! The executable-code arena: where generated call stubs and callback thunks live.
//!
//! A stub is a few dozen to a few hundred bytes, so many stubs share one page. The arena hands
//! out chunks of [`GRANULE`]-byte granules from pooled pages, reuses freed granules, and unmaps a
//! page once it is empty (keeping at most [`MAX_SPARE_PAGES`] empty pages mapped, so creating
//! and dropping one stub in a loop doesn't mmap/munmap every time). A chunk bigger than a page
//! gets a mapping of its own, unmapped when it is freed. An arena made with
//! [`CodeArena::with_unit_pages`] pools aligned units of several pages instead of single pages
//! (what is said below of a page holds for its unit): callback thunks use 64 KiB units, about
//! a hundred thunks per mapping.
//!
//! # Two phases: reserve, then commit
//!
//! Code is assembled elsewhere (the backends, with `VecAssembler` at a chosen base address), so
//! the final address must be known before the bytes exist:
//!
//! 1. [`CodeArena::reserve`]`(len)` picks the place and returns a [`Reservation`] with its
//!    [`addr`](Reservation::addr); the caller assembles exactly `len` bytes for that address.
//! 2. [`CodeArena::commit`]`(reservation, &bytes)` copies them in and returns a [`CodeHandle`].
//!    Dropping the handle (when the owning cdata or callback is collected) frees the chunk.
//!
//! Dropping a `Reservation` without committing it frees the chunk too.
//!
//! # W^X
//!
//! Arena memory is never writable and executable at once: no mapping the arena makes is ever
//! both. Two ways of writing code keep that guarantee:
//!
//! * **Dual mapping** (pooled units on Linux). Each unit is a memory file (`memfd_create`)
//!   mapped twice, shared: read+execute at the unit's address, where code runs and chunks are
//!   handed out, and read+write at another address the kernel picks, where commits copy the
//!   code. Neither mapping's permissions change (but see below), so a commit is a `memcpy`
//!   and no system call: creating a stub costs no `mprotect`, and one unit's half dozen system calls (the
//!   file, its size, the guarded reservation, the two views, closing the file) are shared by
//!   every stub in it. A new unit is all `int3`, and freed chunks become `int3` again. The
//!   writable view's address is never handed out; it lives as long as the unit. Freed
//!   committed code's granules are not handed out again at once: they stay stale until no
//!   unit has room, when one *scrub* takes the execute permission of the whole unit away and
//!   back and frees them all, because tools that translate code (valgrind, QEMU) drop
//!   their translations only when the protection of a range changes; x86 itself keeps
//!   instruction fetch coherent with stores through any mapping of the same memory. A
//!   program building and dropping code so pays two `mprotect` calls per unit's worth of
//!   code.
//! * **Flipping** (dedicated mappings; every pooled unit on other systems, and on Linux once
//!   the kernel refuses a memory file or an executable shared mapping of one, e.g. with
//!   `vm.memfd_noexec = 2` or a seccomp/SELinux policy: the arena then flips from then on).
//!   Pages are mapped read-only; a commit flips the page (or the chunk's own mapping) to
//!   read+write, *not* executable, copies the code, pads the chunk's last granule with `int3`,
//!   and flips it to read+execute. On Windows the same steps are `VirtualAlloc`
//!   (`PAGE_READONLY`), `VirtualProtect` to `PAGE_READWRITE` and then `PAGE_EXECUTE_READ`,
//!   and `FlushInstructionCache`, which Windows asks for after writing code.
//!
//! x86 keeps the instruction cache coherent with stores, so no flush is needed there on unix;
//! other architectures get `__clear_cache` (untested: no backend targets them).
//!
//! Each pooled unit is mapped (its executable view, when dual-mapped) between two
//! inaccessible guard pages of its own, so the kernel never merges its mapping with a
//! neighbour: a flipping commit's two `mprotect` calls then change one mapping in place,
//! instead of splitting it from a neighbour and merging it back (which costs about as much
//! again as the calls themselves). On Windows the guards are reserved address space around
//! the committed unit, in a reservation of its own. The last [`PAGE_TAIL`] bytes of a pooled
//! page hold `int3` and no chunk, so nothing that decodes code ahead reaches the guard.
//!
//! # One thread: the arena is per `lua_State`
//!
//! During a flipping commit (and a dual-mapped unit's scrub) every other stub on
//! the same page is briefly not executable. That is safe because of one invariant: **code in
//! an arena only runs on the thread that owns the arena's `lua_State`, and never while a
//! commit or scrub is in progress**. A commit runs no arena code between
//! its two `mprotect` calls, so even a thunk that is on the current call stack (a callback that
//! called into Lua, which built a new stub) is only returned into after its page is executable
//! again. Running stubs from another thread is already undefined for a `lua_State` (LuaJIT has
//! the same rule for callbacks). The types enforce the Rust side of this: [`CodeArena`],
//! [`Reservation`] and [`CodeHandle`] share the arena through an `Rc`, so they are neither
//! `Send` nor `Sync`:
//!
//! ```compile_fail
//! fn needs_send<T: Send>() {}
//! needs_send::<lua_adapter::os::arena::CodeArena>();
//! ```
//! ```compile_fail
//! fn needs_sync<T: Sync>() {}
//! needs_sync::<lua_adapter::os::arena::CodeHandle>();
//! ```
//!
//! Every live `Reservation` and `CodeHandle` keeps the arena's bookkeeping alive, so a handle
//! may outlive the `CodeArena` value it came from; the pages stay mapped until the last chunk on
//! them is freed.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::rc::Rc;

#[cfg(not(any(unix, windows)))]
compile_error!("arena: only mmap/mprotect (unix) and VirtualAlloc/VirtualProtect (Windows) exist");

/// Size and alignment of the allocation unit: every chunk starts on a 16-byte boundary (what
/// the x86-64 ABIs want for function entry points) and occupies whole granules.
pub const GRANULE: usize = 16;

/// Empty pooled pages kept mapped for reuse instead of being unmapped at once.
/// [`CodeArena::trim`] releases them.
pub const MAX_SPARE_PAGES: usize = 1;

/// Fills the unused tail of a chunk's last granule: a stray jump there traps at once.
const INT3: u8 = 0xCC;

/// Bytes at the end of every pooled page that are never handed out and hold `int3`: code that
/// decodes ahead of what runs (valgrind's translator does, by up to an instruction's length)
/// then stops at a trap inside the page instead of reading the guard page after it, which
/// kills valgrind.
pub const PAGE_TAIL: usize = 64;

/// Executable memory for one `lua_State`'s stubs and thunks. See the [module docs](self).
pub struct CodeArena {
    inner: Rc<RefCell<Pool>>,
}

/// A chunk of the arena that has a final address but no code yet. Assemble exactly
/// [`len`](Self::len) bytes for [`addr`](Self::addr), then [`CodeArena::commit`] them.
/// Dropping it frees the chunk.
#[must_use = "a reservation is freed when dropped; commit code into it"]
#[derive(Debug)]
pub struct Reservation {
    alloc: Allocation,
}

/// Committed, executable code. The code stays at [`addr`](Self::addr) until the handle is
/// dropped, which frees the chunk. Whoever holds a function pointer into it must hold the handle.
#[derive(Debug)]
pub struct CodeHandle {
    /// The unwinder's description of the code, dropped (deregistered) before the code is freed.
    unwind: Option<crate::os::unwind::Registration>,
    alloc: Allocation,
}

/// What the arena holds right now, for tests and `xtask bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArenaStats {
    /// OS pages mapped: pooled pages with live chunks, spare pages, and dedicated mappings
    /// (not counting the pooled pages' guard pages, which hold no memory).
    pub pages_mapped: usize,
    /// Of `pages_mapped`, the pages of the empty pooled units kept for reuse (at most
    /// [`MAX_SPARE_PAGES`] units).
    pub spare_pages: usize,
    /// Bytes held by live chunks, rounded up to whole granules (whole pages for chunks with a
    /// dedicated mapping).
    pub bytes_in_use: usize,
    /// Live reservations plus live code handles.
    pub live_chunks: usize,
}

/// Why the arena refused a request. Plain data (it owns nothing), so it may be alive when a
/// Lua error is raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArenaError {
    /// `reserve(0)`: an empty chunk has no address worth giving out.
    ZeroLength,
    /// The requested length can't be mapped at all (rounding it up overflows `usize`).
    TooLarge { len: usize },
    /// `commit` was given a different number of bytes than were reserved. The code was
    /// assembled for this address and length; anything else means it was assembled for
    /// another reservation. The reservation is freed.
    LengthMismatch { reserved: usize, given: usize },
    /// `commit` was given a reservation made by another arena. The reservation is freed.
    ForeignReservation,
    /// `mmap` or `mprotect` failed (Windows: `VirtualAlloc` or `VirtualProtect`); `errno` is
    /// the OS error code (Windows: `GetLastError()`'s).
    Os { call: &'static str, errno: i32 },
}

impl fmt::Display for ArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArenaError::ZeroLength => write!(f, "cannot reserve 0 bytes of code"),
            ArenaError::TooLarge { len } => write!(f, "cannot reserve {len} bytes of code"),
            ArenaError::LengthMismatch { reserved, given } => {
                write!(f, "code length mismatch: {reserved} bytes reserved, {given} bytes given to commit")
            }
            ArenaError::ForeignReservation => {
                write!(f, "reservation committed to an arena that did not make it")
            }
            ArenaError::Os { call, errno } => match errno_name(*errno) {
                Some(name) => write!(f, "{call}: {name}"),
                None => write!(f, "{call}: {}", std::io::Error::from_raw_os_error(*errno)),
            },
        }
    }
}

impl std::error::Error for ArenaError {}

/// The symbolic name of the errors `mmap` and `mprotect` report (POSIX; Linux's man pages).
#[cfg(unix)]
fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::EINVAL => "EINVAL",
        libc::EAGAIN => "EAGAIN",
        libc::ENFILE => "ENFILE",
        libc::ENODEV => "ENODEV",
        libc::EOVERFLOW => "EOVERFLOW",
        _ => return None,
    })
}

/// The symbolic name of the errors `VirtualAlloc` and `VirtualProtect` report.
#[cfg(windows)]
fn errno_name(code: i32) -> Option<&'static str> {
    use windows_sys::Win32::Foundation as w;
    Some(match code as u32 {
        w::ERROR_NOT_ENOUGH_MEMORY => "ERROR_NOT_ENOUGH_MEMORY",
        w::ERROR_OUTOFMEMORY => "ERROR_OUTOFMEMORY",
        w::ERROR_COMMITMENT_LIMIT => "ERROR_COMMITMENT_LIMIT",
        w::ERROR_INVALID_PARAMETER => "ERROR_INVALID_PARAMETER",
        w::ERROR_INVALID_ADDRESS => "ERROR_INVALID_ADDRESS",
        w::ERROR_ACCESS_DENIED => "ERROR_ACCESS_DENIED",
        _ => return None,
    })
}

impl CodeArena {
    /// An empty arena; maps nothing until the first reservation.
    pub fn new() -> CodeArena {
        CodeArena::with_unit_pages(1)
    }

    /// An empty arena whose pooled units are `pages` pages (a power of two) instead of one:
    /// one mapping then holds many more chunks, and a commit flips the whole unit. For code
    /// made in large numbers, each piece rarely (callback thunks).
    pub fn with_unit_pages(pages: usize) -> CodeArena {
        assert!(pages.is_power_of_two(), "unit of {pages} pages");
        let page = sys::page_size();
        CodeArena { inner: Rc::new(RefCell::new(Pool::new(page, pages * page))) }
    }

    /// Picks a place for `len` bytes of code, [`GRANULE`]-aligned.
    pub fn reserve(&self, len: usize) -> Result<Reservation, ArenaError> {
        let chunk = self.inner.borrow_mut().alloc(len)?;
        Ok(Reservation { alloc: Allocation { pool: Rc::clone(&self.inner), chunk, committed: false } })
    }

    /// Copies `code` (assembled for `reservation.addr()`) into the reserved chunk and makes
    /// it executable. `code.len()` must equal `reservation.len()`.
    ///
    /// While this runs, the other chunks on the same page are not executable (see the
    /// [module docs](self) for why that is safe).
    pub fn commit(&self, reservation: Reservation, code: &[u8]) -> Result<CodeHandle, ArenaError> {
        if let Some(e) = self.inner.borrow().refuse_commits {
            return Err(e);
        }
        let mut alloc = reservation.alloc;
        if !Rc::ptr_eq(&self.inner, &alloc.pool) {
            return Err(ArenaError::ForeignReservation);
        }
        if code.len() != alloc.chunk.len {
            return Err(ArenaError::LengthMismatch { reserved: alloc.chunk.len, given: code.len() });
        }
        self.inner.borrow_mut().write(&alloc.chunk, code)?;
        alloc.committed = true;
        Ok(CodeHandle { unwind: None, alloc })
    }

    /// Test support: from now on every [`commit`](Self::commit) fails with `error` (`None`:
    /// commits work again), as when the OS refuses to make the code executable, so that the
    /// message a user then sees can be tested.
    #[doc(hidden)]
    pub fn refuse_commits(&self, error: Option<ArenaError>) {
        self.inner.borrow_mut().refuse_commits = error;
    }

    /// What the arena holds now.
    pub fn stats(&self) -> ArenaStats {
        self.inner.borrow().stats()
    }

    /// Unmaps the spare pages.
    pub fn trim(&self) {
        self.inner.borrow_mut().trim();
    }
}

impl Default for CodeArena {
    fn default() -> Self {
        CodeArena::new()
    }
}

impl fmt::Debug for CodeArena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeArena").field("stats", &self.stats()).finish()
    }
}

impl Reservation {
    /// The address the code must be assembled for.
    pub fn addr(&self) -> usize {
        self.alloc.chunk.addr
    }

    /// The number of bytes `commit` expects.
    pub fn len(&self) -> usize {
        self.alloc.chunk.len
    }

    /// Always false: the arena refuses empty reservations.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl CodeHandle {
    /// The address of the first byte of the code (the entry point, for stubs and thunks).
    pub fn addr(&self) -> usize {
        self.alloc.chunk.addr
    }

    /// The code's length in bytes, as committed.
    pub fn len(&self) -> usize {
        self.alloc.chunk.len
    }

    /// Always false: the arena refuses empty reservations.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The [`order`](crate::os::unwind::Registration::order) of its unwinder registration
    /// (0: none).
    pub fn registration_order(&self) -> u64 {
        self.unwind.as_ref().map_or(0, crate::os::unwind::Registration::order)
    }

    /// Keeps the unwinder's description of this code for as long as the code lives.
    pub fn set_unwind(&mut self, registration: crate::os::unwind::Registration) {
        self.unwind = Some(registration);
    }

    /// The committed bytes, read back from the arena (for disassembly and tests).
    pub fn code(&self) -> &[u8] {
        // SAFETY: the chunk is mapped readable (PROT_READ|PROT_EXEC, or PROT_READ|PROT_WRITE
        // during a commit of *another* chunk) for as long as this handle keeps it allocated,
        // and its bytes are never written again after its own commit.
        unsafe { std::slice::from_raw_parts(self.addr() as *const u8, self.len()) }
    }
}

/// One live chunk and the pool to give it back to. Shared by `Reservation` and `CodeHandle`
/// so that the chunk is freed exactly once, whichever of them is dropped.
struct Allocation {
    pool: Rc<RefCell<Pool>>,
    chunk: Chunk,
    /// Whether code was committed into the chunk (it may have run, so tools that translate
    /// code must be told when its bytes change: [`Page::stale`]).
    committed: bool,
}

impl fmt::Debug for Allocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The chunk alone: the pool's page maps are noise here.
        write!(f, "{:#x}+{}", self.chunk.addr, self.chunk.len)
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        // No pool method calls out of the arena, so the pool is never borrowed here.
        self.pool.borrow_mut().free(&self.chunk, self.committed);
    }
}

/// Where a chunk lives.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    addr: usize,
    /// The length asked for (what `commit` must be given).
    len: usize,
    placement: Placement,
}

#[derive(Debug, Clone, Copy)]
enum Placement {
    /// `granules` granules of the pooled page that contains `addr`.
    Pooled { granules: usize },
    /// A mapping of its own, `map_len` bytes (whole pages) starting at `addr`.
    Dedicated { map_len: usize },
}

/// The bookkeeping behind a `CodeArena`.
#[derive(Debug)]
struct Pool {
    page_size: usize,
    /// Bytes of a pooled unit ("page" below): the page size, or a power-of-two multiple of
    /// it, each unit aligned to its size.
    unit: usize,
    /// Pooled pages by base address: those holding a live chunk and the spare ones. A spare
    /// page keeps its entry (and its free map), so reusing it allocates nothing.
    pages: BTreeMap<usize, Page>,
    /// `(longest free run in granules, page base)` for every page in `pages`: an allocation
    /// of `n` granules takes the first entry at or after `(n, 0)`, the page whose longest free
    /// run fits best, in O(log pages). A spare page's run is the whole page, so it is taken
    /// only when no page in use has room.
    by_free_run: BTreeSet<(usize, usize)>,
    /// The empty pages among `pages`, at most `MAX_SPARE_PAGES`.
    spare: Vec<usize>,
    /// Dedicated mappings: base address -> length.
    dedicated: BTreeMap<usize, usize>,
    bytes_in_use: usize,
    live_chunks: usize,
    /// What every commit fails with, when set ([`CodeArena::refuse_commits`]).
    refuse_commits: Option<ArenaError>,
    /// Whether new pooled units are mapped twice ([`Views::Dual`]); cleared for good when
    /// the OS refuses a dual mapping, and the pool then flips its units ([`Views::Flip`]).
    /// Only Linux maps units twice.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    dual: bool,
}

/// How the code of a pooled unit is written (module docs, W^X).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
enum Views {
    /// One mapping, read+execute: a commit makes it read+write (not executable), copies,
    /// and makes it read+execute again.
    Flip,
    /// Two views of one shared memory object: the unit's address, read+execute for good,
    /// and `write`, read+write for good; a commit copies through `write`.
    Dual { write: usize },
}

/// The free map of one pooled page: one bit per granule, set while the granule is in a live
/// chunk. Adjacent free granules coalesce by construction.
#[derive(Debug)]
struct Page {
    used: Vec<u64>,
    granules: usize,
    used_granules: usize,
    longest_free: usize,
    /// Every granule below it is used: first fit starts its search here (a unit fills from
    /// its start, so the search skips the filled part).
    free_from: usize,
    views: Views,
    /// Of a dual-mapped unit, the granules of freed committed code, as `(first, count)` runs:
    /// still marked used in `used`, so no commit rewrites bytes that may have run until
    /// [`Pool::scrub`] changes the unit's protection (natively nothing needs it: x86 keeps
    /// instruction fetch coherent with stores through any mapping; but tools that translate
    /// code, valgrind and QEMU, only drop their translations of a range when its protection
    /// changes). One scrub then frees them all, so a program that builds and drops code
    /// pays two `mprotect` calls per unit's worth of code, not per commit.
    stale: Vec<(usize, usize)>,
    /// The granules in `stale`.
    stale_granules: usize,
}

impl Pool {
    fn new(page_size: usize, unit: usize) -> Pool {
        Pool {
            page_size,
            unit,
            pages: BTreeMap::new(),
            by_free_run: BTreeSet::new(),
            spare: Vec::new(),
            dedicated: BTreeMap::new(),
            bytes_in_use: 0,
            live_chunks: 0,
            refuse_commits: None,
            dual: cfg!(target_os = "linux"),
        }
    }

    /// Granules a pooled page hands out: all but [`PAGE_TAIL`].
    fn granules_per_page(&self) -> usize {
        (self.unit - PAGE_TAIL) / GRANULE
    }

    fn alloc(&mut self, len: usize) -> Result<Chunk, ArenaError> {
        if len == 0 {
            return Err(ArenaError::ZeroLength);
        }
        let chunk = if len <= self.granules_per_page() * GRANULE {
            self.alloc_pooled(len)?
        } else {
            self.alloc_dedicated(len)?
        };
        self.live_chunks += 1;
        Ok(chunk)
    }

    fn alloc_pooled(&mut self, len: usize) -> Result<Chunk, ArenaError> {
        let granules = len.div_ceil(GRANULE);
        let base = match self.fitting_page(granules) {
            Some(base) => base,
            None => match self.scrub_for(granules)? {
                Some(base) => base,
                None => self.add_page()?,
            },
        };
        let page = self.pages.get_mut(&base).expect("indexed page exists");
        self.by_free_run.remove(&(page.longest_free, base));
        if page.live_granules() == 0 {
            self.spare.retain(|&spare| spare != base);
        }
        let (first, run) = page.find_free_run(granules).expect("index promised a long enough run");
        page.mark_used(first, granules, run);
        self.by_free_run.insert((page.longest_free, base));
        self.bytes_in_use += granules * GRANULE;
        Ok(Chunk { addr: base + first * GRANULE, len, placement: Placement::Pooled { granules } })
    }

    /// The page whose longest free run fits `granules` best, if any.
    fn fitting_page(&self, granules: usize) -> Option<usize> {
        self.by_free_run.range((granules, 0)..).next().map(|&(_, base)| base)
    }

    /// Scrubs units holding stale granules ([`Page::stale`]) until one has a free run of
    /// `granules`, and returns it; `None` when none has (every stale unit is then scrubbed).
    /// Reached only when no unit has room, so it runs once per unit's worth of freed code.
    fn scrub_for(&mut self, granules: usize) -> Result<Option<usize>, ArenaError> {
        let stale: Vec<usize> = self.pages.iter().filter(|(_, p)| p.stale_granules > 0).map(|(&b, _)| b).collect();
        for base in stale {
            self.scrub(base)?;
            if let Some(base) = self.fitting_page(granules) {
                return Ok(Some(base));
            }
        }
        Ok(None)
    }

    /// Frees the stale granules of the dual-mapped unit at `base`, after taking the execute
    /// permission of its executable view away and giving it back (two `mprotect` calls on
    /// the unit's own mapping, between its guards, so nothing is split or merged), which
    /// tells tools that translate code that its bytes may change. Their bytes are already
    /// `int3` (written when freed). Like a flipping commit, this briefly makes the unit's other
    /// code not executable (module docs: one thread).
    fn scrub(&mut self, base: usize) -> Result<(), ArenaError> {
        let unit = self.unit;
        let page = self.pages.get_mut(&base).expect("scrubbed page is live");
        sys::protect(base, unit, sys::Access::Read)?;
        #[cfg(test)]
        tests::during_scrub(base);
        sys::protect(base, unit, sys::Access::ReadExecute)?;
        self.by_free_run.remove(&(page.longest_free, base));
        for (first, count) in std::mem::take(&mut page.stale) {
            page.mark_free(first, count);
        }
        page.stale_granules = 0;
        self.by_free_run.insert((page.longest_free, base));
        Ok(())
    }

    /// Maps a new empty page and makes it available for allocation.
    fn add_page(&mut self) -> Result<usize, ArenaError> {
        let (base, views) = self.map_unit()?;
        let page = Page::empty(self.granules_per_page(), views);
        self.by_free_run.insert((page.longest_free, base));
        self.pages.insert(base, page);
        Ok(base)
    }

    /// Maps a unit: twice when the pool is [`dual`](Pool::dual) and the OS agrees, with every
    /// byte `int3` until code is committed; once otherwise.
    fn map_unit(&mut self) -> Result<(usize, Views), ArenaError> {
        #[cfg(target_os = "linux")]
        if self.dual {
            match sys::map_guarded_dual(self.unit, self.page_size) {
                Ok((exec, write)) => {
                    // SAFETY: `write..write+unit` is the writable view of a unit just
                    // mapped, which no chunk uses yet.
                    unsafe { std::slice::from_raw_parts_mut(write as *mut u8, self.unit) }.fill(INT3);
                    return Ok((exec, Views::Dual { write }));
                }
                // Refused (no memfd, or a policy against executable shared memory): flip from
                // now on.
                Err(_) => self.dual = false,
            }
        }
        Ok((sys::map_guarded(self.unit, self.page_size)?, Views::Flip))
    }

    fn alloc_dedicated(&mut self, len: usize) -> Result<Chunk, ArenaError> {
        // With a PAGE_TAIL of traps after the code, as on a pooled page.
        let map_len = len
            .checked_add(PAGE_TAIL)
            .and_then(|n| n.checked_next_multiple_of(self.page_size))
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or(ArenaError::TooLarge { len })?;
        let addr = sys::map(map_len)?;
        self.dedicated.insert(addr, map_len);
        self.bytes_in_use += map_len;
        Ok(Chunk { addr, len, placement: Placement::Dedicated { map_len } })
    }

    fn free(&mut self, chunk: &Chunk, committed: bool) {
        self.live_chunks -= 1;
        match chunk.placement {
            Placement::Pooled { granules } => {
                let base = chunk.addr & !(self.unit - 1);
                let page = self.pages.get_mut(&base).expect("chunk's page is live");
                let first = (chunk.addr - base) / GRANULE;
                let old_key = (page.longest_free, base);
                match page.views {
                    Views::Dual { write } => {
                        // Freed code becomes traps at no cost: the writable view is always there.
                        let at = write + (chunk.addr - base);
                        // SAFETY: the chunk's granules, in the writable view of its live unit;
                        // the chunk is being freed, so nothing else owns them.
                        unsafe { std::slice::from_raw_parts_mut(at as *mut u8, granules * GRANULE) }.fill(INT3);
                        if committed {
                            // Code that may have run: reused only after a scrub.
                            page.stale.push((first, granules));
                            page.stale_granules += granules;
                        } else {
                            page.mark_free(first, granules);
                        }
                    }
                    Views::Flip => page.mark_free(first, granules),
                }
                self.bytes_in_use -= granules * GRANULE;
                self.by_free_run.remove(&old_key);
                let now_empty = page.live_granules() == 0;
                if !now_empty || self.spare.len() < MAX_SPARE_PAGES {
                    self.by_free_run.insert((page.longest_free, base));
                    if now_empty {
                        self.spare.push(base);
                    }
                } else {
                    let page = self.pages.remove(&base).expect("chunk's page is live");
                    unmap_unit(base, self.unit, self.page_size, page.views);
                }
            }
            Placement::Dedicated { map_len } => {
                self.dedicated.remove(&chunk.addr);
                self.bytes_in_use -= map_len;
                sys::unmap(chunk.addr, map_len);
            }
        }
    }

    /// The commit proper. Never W+X.
    fn write(&mut self, chunk: &Chunk, code: &[u8]) -> Result<(), ArenaError> {
        if let Placement::Pooled { granules } = chunk.placement {
            let base = chunk.addr & !(self.unit - 1);
            let page = self.pages.get_mut(&base).expect("chunk's page is live");
            if let Views::Dual { write } = page.views {
                write_dual(chunk, granules * GRANULE, base, write, code);
                return Ok(());
            }
        }
        self.write_flip(chunk, code)
    }

    /// A commit into a unit mapped once (or a dedicated mapping): RW, copy, pad, RX.
    fn write_flip(&self, chunk: &Chunk, code: &[u8]) -> Result<(), ArenaError> {
        let (region, region_len, chunk_len) = match chunk.placement {
            Placement::Pooled { granules } => (chunk.addr & !(self.unit - 1), self.unit, granules * GRANULE),
            Placement::Dedicated { map_len } => (chunk.addr, map_len, map_len),
        };
        sys::protect(region, region_len, sys::Access::ReadWrite)?;
        // SAFETY: the chunk's `chunk_len` bytes at `chunk.addr` lie inside `region`, which is
        // mapped read+write right now, and belong to this chunk alone; `code.len()` equals
        // `chunk.len <= chunk_len`.
        let dest = unsafe { std::slice::from_raw_parts_mut(chunk.addr as *mut u8, chunk_len) };
        dest[..code.len()].copy_from_slice(code);
        dest[code.len()..].fill(INT3);
        if let Placement::Pooled { .. } = chunk.placement {
            // SAFETY: the page's last PAGE_TAIL bytes, inside `region`, belong to no chunk.
            unsafe { std::slice::from_raw_parts_mut((region + region_len - PAGE_TAIL) as *mut u8, PAGE_TAIL) }
                .fill(INT3);
        }
        #[cfg(test)]
        tests::during_commit(region, region);
        // If this fails the page stays read+write: its stubs fault when called, but it is
        // still never writable and executable at once.
        sys::protect(region, region_len, sys::Access::ReadExecute)?;
        sys::flush_icache(chunk.addr, chunk_len);
        Ok(())
    }

    fn trim(&mut self) {
        for base in self.spare.drain(..) {
            let page = self.pages.remove(&base).expect("spare page is live");
            self.by_free_run.remove(&(page.longest_free, base));
            unmap_unit(base, self.unit, self.page_size, page.views);
        }
    }

    fn stats(&self) -> ArenaStats {
        let dedicated_pages: usize = self.dedicated.values().map(|len| len / self.page_size).sum();
        let unit_pages = self.unit / self.page_size;
        ArenaStats {
            pages_mapped: self.pages.len() * unit_pages + dedicated_pages,
            spare_pages: self.spare.len() * unit_pages,
            bytes_in_use: self.bytes_in_use,
            live_chunks: self.live_chunks,
        }
    }
}

/// A commit into a dual-mapped unit (exec view at `base`, writable view at `write`): copy and
/// pad through the writable view; the executable view stays read+execute. The chunk's
/// granules never held code since the unit's protection last changed ([`Page::stale`]), so
/// no tool that translates code holds a translation of them. (Before, reused granules were
/// written with the pages holding them read-only, two `mprotect` calls per commit, each
/// splitting the unit's mapping and merging it back: building and dropping a stub in a loop
/// cost 4.6-4.8 us instead of 2.3-3.2.)
fn write_dual(chunk: &Chunk, chunk_len: usize, base: usize, write: usize, code: &[u8]) {
    let at = write + (chunk.addr - base);
    // SAFETY: the chunk's `chunk_len` bytes, in the writable view of its live unit, belong to
    // this chunk alone; `code.len()` equals `chunk.len <= chunk_len`.
    let dest = unsafe { std::slice::from_raw_parts_mut(at as *mut u8, chunk_len) };
    dest[..code.len()].copy_from_slice(code);
    dest[code.len()..].fill(INT3);
    #[cfg(test)]
    tests::during_commit(at, chunk.addr);
    sys::flush_icache(chunk.addr, chunk_len);
}

/// Unmaps a pooled unit, with its guards and, when dual-mapped, its writable view.
fn unmap_unit(base: usize, unit: usize, page_size: usize, views: Views) {
    sys::unmap_guarded(base, unit, page_size);
    if let Views::Dual { write } = views {
        sys::unmap(write, unit);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Every chunk holds an `Rc` to the pool, so only spare pages can be left.
        debug_assert!(self.pages.len() == self.spare.len() && self.dedicated.is_empty());
        self.trim();
    }
}

impl Page {
    fn empty(granules: usize, views: Views) -> Page {
        Page {
            used: vec![0; granules.div_ceil(64)],
            granules,
            used_granules: 0,
            longest_free: granules,
            free_from: 0,
            views,
            stale: Vec::new(),
            stale_granules: 0,
        }
    }

    /// Granules in live chunks (marked used and not stale).
    fn live_granules(&self) -> usize {
        self.used_granules - self.stale_granules
    }

    /// Marks the `count` granules at `first`, the start of a free run of `run` granules, used.
    /// The longest free run is looked for again only when this one was it.
    fn mark_used(&mut self, first: usize, count: usize, run: usize) {
        self.mark_bits(first, count, true);
        if first == self.free_from {
            self.free_from = first + count;
        }
        if run >= self.longest_free {
            self.longest_free = self.free_runs().map(|(_, len)| len).max().unwrap_or(0);
        }
    }

    /// Marks the `count` granules at `first` free.
    fn mark_free(&mut self, first: usize, count: usize) {
        self.mark_bits(first, count, false);
        self.free_from = self.free_from.min(first);
        self.longest_free = self.free_runs().map(|(_, len)| len).max().unwrap_or(0);
    }

    fn mark_bits(&mut self, first: usize, count: usize, used: bool) {
        // A word of the bitmap at a time.
        let end = first + count;
        let mut g = first;
        while g < end {
            let bits = (64 - g % 64).min(end - g);
            let mask = (u64::MAX >> (64 - bits)) << (g % 64);
            let word = &mut self.used[g / 64];
            debug_assert_eq!(*word & mask, if used { 0 } else { mask }, "granules {g}..{} marked twice", g + bits);
            if used {
                *word |= mask;
            } else {
                *word &= !mask;
            }
            g += bits;
        }
        if used {
            self.used_granules += count;
        } else {
            self.used_granules -= count;
        }
    }

    /// The first free run of at least `count` granules (first fit within the page), as
    /// `(first granule, length)`.
    fn find_free_run(&self, count: usize) -> Option<(usize, usize)> {
        self.free_runs().find(|&(_, len)| len >= count)
    }

    /// Maximal runs of free granules, as `(first granule, length)`, in address order.
    fn free_runs(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let n = self.granules;
        let mut g = self.free_from;
        std::iter::from_fn(move || {
            g = self.next_marked(g, false);
            if g == n {
                return None;
            }
            let start = g;
            g = self.next_marked(g, true);
            Some((start, g - start))
        })
    }

    /// The first granule at or after `from` that is used (`used`) or free (`!used`), or
    /// `granules` if none: a word of the bitmap at a time.
    fn next_marked(&self, from: usize, used: bool) -> usize {
        let mut g = from;
        while g < self.granules {
            let word = if used { self.used[g / 64] } else { !self.used[g / 64] } >> (g % 64);
            if word != 0 {
                return (g + word.trailing_zeros() as usize).min(self.granules);
            }
            g = (g / 64 + 1) * 64;
        }
        self.granules
    }
}

/// The OS calls, each wrapped once (unix: mmap/mprotect/munmap).
#[cfg(unix)]
mod sys {
    use super::ArenaError;

    pub(super) enum Access {
        Read,
        ReadWrite,
        ReadExecute,
    }

    pub(super) fn page_size() -> usize {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        assert!(n > 0 && (n as usize).is_power_of_two(), "sysconf(_SC_PAGESIZE) = {n}");
        assert!((n as usize).is_multiple_of(super::GRANULE));
        n as usize
    }

    fn os_error(call: &'static str) -> ArenaError {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        ArenaError::Os { call, errno }
    }

    /// Maps `len` bytes (a multiple of the page size), readable only until the first commit.
    pub(super) fn map(len: usize) -> Result<usize, ArenaError> {
        map_anonymous(len, libc::PROT_READ)
    }

    /// Maps one unit (`unit` bytes, a power-of-two multiple of `page`, aligned to its
    /// size), readable only, between two inaccessible guard pages of its own, so that its
    /// mapping never merges with a neighbour (module docs, W^X). The guards take address
    /// space, not memory.
    pub(super) fn map_guarded(unit: usize, page: usize) -> Result<usize, ArenaError> {
        map_guarded_with(unit, page, |addr| protect(addr, unit, Access::Read))
    }

    /// Reserves an aligned unit between two guard pages, all inaccessible, and lets `open`
    /// make the unit itself accessible (undone, with the guards, if it fails).
    fn map_guarded_with(
        unit: usize,
        page: usize,
        open: impl FnOnce(usize) -> Result<(), ArenaError>,
    ) -> Result<usize, ArenaError> {
        // Room for an aligned unit and its guards; what lies around them is given back.
        let len = if unit == page { 3 * page } else { 2 * unit + 2 * page };
        let start = map_anonymous(len, libc::PROT_NONE)?;
        let addr = (start + page).next_multiple_of(unit);
        let (head, tail) = (addr - page - start, start + len - (addr + unit + page));
        if head > 0 {
            unmap(start, head);
        }
        if tail > 0 {
            unmap(addr + unit + page, tail);
        }
        if let Err(e) = open(addr) {
            unmap_guarded(addr, unit, page);
            return Err(e);
        }
        Ok(addr)
    }

    /// Maps one unit as [`map_guarded`] does, twice: a memory file (`memfd_create`) mapped
    /// shared, read+execute between guard pages (returned first: where the code runs), and
    /// read+write elsewhere (where it is written). Neither view is ever writable and
    /// executable. Fails where memory files can't be made or mapped executable (kernels
    /// before 3.17, `vm.memfd_noexec = 2`, seccomp or SELinux policies).
    #[cfg(target_os = "linux")]
    pub(super) fn map_guarded_dual(unit: usize, page: usize) -> Result<(usize, usize), ArenaError> {
        // The system call rather than glibc's wrapper (2.27 and later): runs on older ones.
        // SAFETY: memfd_create takes a NUL-terminated name and flags, and makes a new file.
        let fd = unsafe { libc::syscall(libc::SYS_memfd_create, c"code-arena".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(os_error("memfd_create"));
        }
        let fd = fd as libc::c_int;
        let views = map_views(fd, unit, page);
        // SAFETY: `fd` is the file just made, owned here; the mappings keep the file alive.
        unsafe { libc::close(fd) };
        views
    }

    /// The two views of [`map_guarded_dual`], of the memory file `fd`.
    #[cfg(target_os = "linux")]
    fn map_views(fd: libc::c_int, unit: usize, page: usize) -> Result<(usize, usize), ArenaError> {
        // SAFETY: sets the size of the file made by the caller, which nothing else uses.
        if unsafe { libc::ftruncate(fd, unit as libc::off_t) } != 0 {
            return Err(os_error("ftruncate"));
        }
        let exec = map_guarded_with(unit, page, |addr| {
            // SAFETY: `addr..addr+unit` is inaccessible address space this arena just mapped
            // (MAP_FIXED replaces it), between the unit's guard pages.
            let p = unsafe {
                libc::mmap(
                    addr as *mut libc::c_void,
                    unit,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    fd,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(os_error("mmap"));
            }
            Ok(())
        })?;
        // SAFETY: a shared mapping of the file at an address of the kernel's choosing touches
        // no existing memory.
        let write = unsafe {
            libc::mmap(std::ptr::null_mut(), unit, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
        };
        if write == libc::MAP_FAILED {
            let e = os_error("mmap");
            unmap_guarded(exec, unit, page);
            return Err(e);
        }
        Ok((exec, write as usize))
    }

    fn map_anonymous(len: usize, prot: libc::c_int) -> Result<usize, ArenaError> {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
        // no existing memory.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err(os_error("mmap"));
        }
        Ok(p as usize)
    }

    /// Unmaps a unit mapped by [`map_guarded`], with its guards.
    pub(super) fn unmap_guarded(addr: usize, unit: usize, page: usize) {
        unmap(addr - page, unit + 2 * page);
    }

    pub(super) fn unmap(addr: usize, len: usize) {
        // SAFETY: `addr..addr+len` is a mapping this arena made and no live chunk uses.
        let rc = unsafe { libc::munmap(addr as *mut libc::c_void, len) };
        // munmap of a range we mapped can only fail on a bookkeeping bug; leaking it is harmless.
        debug_assert_eq!(rc, 0, "munmap({addr:#x}, {len})");
    }

    pub(super) fn protect(addr: usize, len: usize, access: Access) -> Result<(), ArenaError> {
        let prot = match access {
            Access::Read => libc::PROT_READ,
            Access::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
            Access::ReadExecute => libc::PROT_READ | libc::PROT_EXEC,
        };
        // SAFETY: `addr..addr+len` is whole pages of a mapping this arena owns; changing their
        // protection affects only arena code, which runs on this thread only (module docs).
        let rc = unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) };
        if rc != 0 {
            return Err(os_error("mprotect"));
        }
        Ok(())
    }

    /// x86 and x86-64 keep instruction fetch coherent with stores: nothing to do.
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    pub(super) fn flush_icache(_addr: usize, _len: usize) {}

    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    pub(super) fn flush_icache(addr: usize, len: usize) {
        extern "C" {
            fn __clear_cache(start: *mut libc::c_char, end: *mut libc::c_char);
        }
        // SAFETY: the range is mapped; __clear_cache (libgcc / compiler-rt) only flushes caches.
        unsafe { __clear_cache(addr as *mut libc::c_char, (addr + len) as *mut libc::c_char) }
    }
}

/// The OS calls, each wrapped once (Windows: VirtualAlloc/VirtualProtect/VirtualFree). The
/// same interface as the unix module; the differences are in how a region is given back:
/// Windows frees only whole reservations, so a guarded unit stays one reservation (its guards
/// and the unused space around it reserved, never committed) and is released through the
/// reservation's base, which `VirtualQuery` reports.
#[cfg(windows)]
mod sys {
    use super::ArenaError;
    use std::ffi::c_void;
    use windows_sys::Win32::System::Memory as mem;

    pub(super) enum Access {
        Read,
        ReadWrite,
        ReadExecute,
    }

    pub(super) fn page_size() -> usize {
        // SAFETY: GetSystemInfo fills the struct it is given; all-zero is a valid SYSTEM_INFO.
        let n = unsafe {
            let mut info = std::mem::zeroed::<windows_sys::Win32::System::SystemInformation::SYSTEM_INFO>();
            windows_sys::Win32::System::SystemInformation::GetSystemInfo(&mut info);
            info.dwPageSize as usize
        };
        assert!(n > 0 && n.is_power_of_two(), "GetSystemInfo: dwPageSize = {n}");
        assert!(n.is_multiple_of(super::GRANULE));
        n
    }

    fn os_error(call: &'static str) -> ArenaError {
        // SAFETY: GetLastError has no preconditions.
        let code = unsafe { windows_sys::Win32::Foundation::GetLastError() };
        ArenaError::Os { call, errno: code as i32 }
    }

    /// Reserves and commits `len` bytes (a multiple of the page size), readable only until
    /// the first commit.
    pub(super) fn map(len: usize) -> Result<usize, ArenaError> {
        // SAFETY: a fresh allocation at an address of the system's choosing touches no
        // existing memory.
        let p =
            unsafe { mem::VirtualAlloc(std::ptr::null(), len, mem::MEM_RESERVE | mem::MEM_COMMIT, mem::PAGE_READONLY) };
        if p.is_null() {
            return Err(os_error("VirtualAlloc"));
        }
        Ok(p as usize)
    }

    /// Commits one unit (`unit` bytes, a power-of-two multiple of `page`, aligned to its
    /// size), readable only, inside a reservation of its own that keeps at least a page of
    /// inaccessible (reserved, uncommitted) address space on each side.
    pub(super) fn map_guarded(unit: usize, page: usize) -> Result<usize, ArenaError> {
        let len = if unit == page { 3 * page } else { 2 * unit + 2 * page };
        // SAFETY: a fresh reservation at an address of the system's choosing.
        let start = unsafe { mem::VirtualAlloc(std::ptr::null(), len, mem::MEM_RESERVE, mem::PAGE_NOACCESS) };
        if start.is_null() {
            return Err(os_error("VirtualAlloc"));
        }
        let addr = (start as usize + page).next_multiple_of(unit);
        // SAFETY: `addr..addr+unit` lies inside the reservation just made (with a page to
        // spare on each side).
        let p = unsafe { mem::VirtualAlloc(addr as *const c_void, unit, mem::MEM_COMMIT, mem::PAGE_READONLY) };
        if p.is_null() {
            let e = os_error("VirtualAlloc");
            release(start as usize);
            return Err(e);
        }
        Ok(addr)
    }

    /// Releases the reservation holding a unit mapped by [`map_guarded`], with its guards.
    pub(super) fn unmap_guarded(addr: usize, _unit: usize, _page: usize) {
        // SAFETY: VirtualQuery only reads the address space's bookkeeping; `info` is plain
        // data.
        let base = unsafe {
            let mut info = std::mem::zeroed::<mem::MEMORY_BASIC_INFORMATION>();
            let n = mem::VirtualQuery(addr as *const c_void, &mut info, std::mem::size_of_val(&info));
            debug_assert_ne!(n, 0, "VirtualQuery({addr:#x})");
            info.AllocationBase as usize
        };
        release(base);
    }

    pub(super) fn unmap(addr: usize, _len: usize) {
        release(addr);
    }

    fn release(base: usize) {
        // SAFETY: `base` starts a reservation this arena made and no live chunk uses.
        let ok = unsafe { mem::VirtualFree(base as *mut c_void, 0, mem::MEM_RELEASE) };
        // Releasing our own reservation can only fail on a bookkeeping bug; leaking it is
        // harmless.
        debug_assert_ne!(ok, 0, "VirtualFree({base:#x})");
    }

    pub(super) fn protect(addr: usize, len: usize, access: Access) -> Result<(), ArenaError> {
        let prot = match access {
            Access::Read => mem::PAGE_READONLY,
            Access::ReadWrite => mem::PAGE_READWRITE,
            Access::ReadExecute => mem::PAGE_EXECUTE_READ,
        };
        let mut old = 0;
        // SAFETY: `addr..addr+len` is whole committed pages of a reservation this arena owns;
        // changing their protection affects only arena code, which runs on this thread only
        // (module docs).
        let ok = unsafe { mem::VirtualProtect(addr as *const c_void, len, prot, &mut old) };
        if ok == 0 {
            return Err(os_error("VirtualProtect"));
        }
        Ok(())
    }

    /// Windows documents `FlushInstructionCache` as required after writing code, whatever the
    /// processor (on x86 it costs a system call and nothing more).
    pub(super) fn flush_icache(addr: usize, len: usize) {
        // SAFETY: the range is committed memory of this process; the call only flushes.
        unsafe {
            windows_sys::Win32::System::Diagnostics::Debug::FlushInstructionCache(
                windows_sys::Win32::System::Threading::GetCurrentProcess(),
                addr as *const c_void,
                len,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    thread_local! {
        /// Permissions where a commit writes and where its code runs, sampled right after
        /// the copy (before a flipped page is made executable again).
        static SEEN_DURING_COMMIT: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
        static WATCH_COMMITS: Cell<bool> = const { Cell::new(false) };
        /// The permissions of each scrubbed unit's executable view during its scrub.
        static SEEN_SCRUBS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    /// Called by a scrub between its two `mprotect` calls, with the unit's address.
    pub(super) fn during_scrub(base: usize) {
        if WATCH_COMMITS.get() {
            let perms = perms_at(base).expect("scrubbed unit is mapped");
            SEEN_SCRUBS.with_borrow_mut(|seen| seen.push(perms));
        }
    }

    /// Called by a commit after the copy, with the address written to and the address the
    /// code runs at (the same one on a flipped page).
    pub(super) fn during_commit(written_at: usize, runs_at: usize) {
        if WATCH_COMMITS.get() {
            let written = perms_at(written_at).expect("written view is mapped");
            let runs = perms_at(runs_at).expect("executable view is mapped");
            SEEN_DURING_COMMIT.with_borrow_mut(|seen| seen.push((written, runs)));
        }
    }

    /// `(start, end, perms)` of every mapping of this process.
    #[cfg(unix)]
    fn maps() -> Vec<(usize, usize, String)> {
        let text = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
        text.lines()
            .map(|line| {
                let mut fields = line.split_whitespace();
                let range = fields.next().unwrap();
                let perms = fields.next().unwrap().to_string();
                let (start, end) = range.split_once('-').unwrap();
                let parse = |s| usize::from_str_radix(s, 16).unwrap();
                (parse(start), parse(end), perms)
            })
            .collect()
    }

    /// `(start, end, perms)` of every region of this process's address space that is
    /// reserved or committed, as `VirtualQuery` reports it, with its protection written as
    /// `/proc/self/maps` would (reserved address space is `---p`).
    #[cfg(windows)]
    fn maps() -> Vec<(usize, usize, String)> {
        use windows_sys::Win32::System::Memory as mem;
        let mut out = Vec::new();
        let mut addr = 0usize;
        loop {
            // SAFETY: VirtualQuery only reads the address space's bookkeeping.
            let info = unsafe {
                let mut info = std::mem::zeroed::<mem::MEMORY_BASIC_INFORMATION>();
                let n = mem::VirtualQuery(addr as *const std::ffi::c_void, &mut info, std::mem::size_of_val(&info));
                if n == 0 {
                    break;
                }
                info
            };
            let (start, len) = (info.BaseAddress as usize, info.RegionSize);
            let perms = match (info.State, info.Protect & 0xff) {
                (mem::MEM_FREE, _) => None,
                (mem::MEM_RESERVE, _) | (_, mem::PAGE_NOACCESS) => Some("---p"),
                (_, mem::PAGE_READONLY) => Some("r--p"),
                (_, mem::PAGE_READWRITE | mem::PAGE_WRITECOPY) => Some("rw-p"),
                (_, mem::PAGE_EXECUTE) => Some("--xp"),
                (_, mem::PAGE_EXECUTE_READ) => Some("r-xp"),
                (_, mem::PAGE_EXECUTE_READWRITE | mem::PAGE_EXECUTE_WRITECOPY) => Some("rwxp"),
                (_, other) => panic!("protection {other:#x} at {start:#x}"),
            };
            if let Some(perms) = perms {
                out.push((start, start.wrapping_add(len), perms.to_string()));
            }
            match start.checked_add(len) {
                Some(next) if next > addr => addr = next,
                _ => break,
            }
        }
        out
    }

    fn perms_at(addr: usize) -> Option<String> {
        maps().into_iter().find(|&(s, e, _)| s <= addr && addr < e).map(|(_, _, p)| p)
    }

    fn writable_and_executable() -> Vec<(usize, usize, String)> {
        writable_and_executable_in(maps())
    }

    fn writable_and_executable_in(maps: Vec<(usize, usize, String)>) -> Vec<(usize, usize, String)> {
        maps.into_iter().filter(|(_, _, p)| p.contains('w') && p.contains('x')).collect()
    }

    /// The arenas the behaviour tests run on: the default (dual-mapped units on Linux) and
    /// one that flips its units (the other systems', and Linux's when memory files are
    /// refused), each of `pages`-page units.
    fn both_kinds(pages: usize) -> [CodeArena; 2] {
        let flipping = CodeArena::with_unit_pages(pages);
        flipping.inner.borrow_mut().dual = false;
        [CodeArena::with_unit_pages(pages), flipping]
    }

    /// How `/proc/self/maps` marks the arena's pooled units: `s` (shared) for dual-mapped
    /// units, `p` (private) for flipped ones.
    fn sharing(arena: &CodeArena) -> &'static str {
        if arena.inner.borrow().dual {
            "s"
        } else {
            "p"
        }
    }

    /// `int add(int a, int b)` for the host's C convention. x86-64 System V:
    /// `mov eax, edi; add eax, esi; ret`.
    #[cfg(all(target_arch = "x86_64", not(windows)))]
    const ADD: &[u8] = &[0x89, 0xf8, 0x01, 0xf0, 0xc3];
    /// x86-64 Windows: `lea eax, [rcx+rdx]; ret`.
    #[cfg(all(target_arch = "x86_64", windows))]
    const ADD: &[u8] = &[0x8d, 0x04, 0x11, 0xc3];
    /// i386 cdecl: `mov eax, [esp+4]; add eax, [esp+8]; ret`.
    #[cfg(target_arch = "x86")]
    const ADD: &[u8] = &[0x8b, 0x44, 0x24, 0x04, 0x03, 0x44, 0x24, 0x08, 0xc3];

    /// `int sub(int a, int b)`, as [`ADD`] with `sub`.
    #[cfg(all(target_arch = "x86_64", not(windows)))]
    const SUB: &[u8] = &[0x89, 0xf8, 0x29, 0xf0, 0xc3];
    /// `mov eax, ecx; sub eax, edx; ret`.
    #[cfg(all(target_arch = "x86_64", windows))]
    const SUB: &[u8] = &[0x89, 0xc8, 0x29, 0xd0, 0xc3];
    #[cfg(target_arch = "x86")]
    const SUB: &[u8] = &[0x8b, 0x44, 0x24, 0x04, 0x2b, 0x44, 0x24, 0x08, 0xc3];

    /// The call `map` names in its errors.
    const MAP_CALL: &str = if cfg!(windows) { "VirtualAlloc" } else { "mmap" };

    fn commit_bytes(arena: &CodeArena, code: &[u8]) -> CodeHandle {
        let r = arena.reserve(code.len()).unwrap();
        arena.commit(r, code).unwrap()
    }

    fn page_of(addr: usize) -> usize {
        addr & !(sys::page_size() - 1)
    }

    #[test]
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    fn committed_code_runs() {
        for arena in both_kinds(1) {
            committed_code_runs_in(&arena);
        }
    }

    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    fn committed_code_runs_in(arena: &CodeArena) {
        let add = commit_bytes(arena, ADD);
        assert_eq!(add.addr() % GRANULE, 0);
        assert_eq!(add.code(), ADD);
        // SAFETY: the handle holds the host's code for `int(int, int)`, executable until dropped.
        let f: extern "C" fn(i32, i32) -> i32 = unsafe { std::mem::transmute(add.addr()) };
        assert_eq!(f(40, 2), 42);
        assert_eq!(f(-7, 3), -4);
    }

    #[test]
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    fn a_commit_keeps_earlier_stubs_on_the_page_runnable() {
        for arena in both_kinds(1) {
            a_commit_keeps_earlier_stubs_on_the_page_runnable_in(&arena);
        }
    }

    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    fn a_commit_keeps_earlier_stubs_on_the_page_runnable_in(arena: &CodeArena) {
        let first = commit_bytes(arena, ADD);
        let second = commit_bytes(arena, SUB);
        assert_eq!(page_of(first.addr()), page_of(second.addr()), "stubs share a page");
        assert_eq!(second.addr(), first.addr() + GRANULE);
        // SAFETY: both handles hold `int(int, int)` code and are alive.
        let add: extern "C" fn(i32, i32) -> i32 = unsafe { std::mem::transmute(first.addr()) };
        // SAFETY: `second` holds `int(int, int)` code and stays alive until the test ends.
        let sub: extern "C" fn(i32, i32) -> i32 = unsafe { std::mem::transmute(second.addr()) };
        assert_eq!(add(5, 3), 8);
        assert_eq!(sub(5, 3), 2);
    }

    #[test]
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    fn a_handle_outlives_its_arena_value() {
        let arena = CodeArena::new();
        let add = commit_bytes(&arena, ADD);
        drop(arena);
        // SAFETY: the handle keeps the pool, and so the page, alive.
        let f: extern "C" fn(i32, i32) -> i32 = unsafe { std::mem::transmute(add.addr()) };
        assert_eq!(f(1, 2), 3);
        // Dropping the last handle frees the pool and unmaps the page (not checked through
        // /proc/self/maps: another test thread may map something at the same address).
        drop(add);
    }

    #[test]
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    fn a_chunk_bigger_than_a_page_gets_its_own_mapping() {
        let arena = CodeArena::new();
        let page = sys::page_size();
        let mut code = vec![INT3; 3 * page + 1];
        code[..ADD.len()].copy_from_slice(ADD);
        let big = commit_bytes(&arena, &code);
        assert_eq!(
            arena.stats(),
            ArenaStats { pages_mapped: 4, spare_pages: 0, bytes_in_use: 4 * page, live_chunks: 1 }
        );
        assert_eq!(big.code(), &code[..]);
        // SAFETY: the mapping starts with `int(int, int)` code and is alive.
        let f: extern "C" fn(i32, i32) -> i32 = unsafe { std::mem::transmute(big.addr()) };
        assert_eq!(f(20, 22), 42);
        drop(big);
        assert_eq!(arena.stats(), ArenaStats::default());
    }

    #[test]
    #[cfg(any(target_os = "linux", windows))]
    fn memory_is_never_writable_and_executable() {
        for arena in both_kinds(1) {
            memory_is_never_writable_and_executable_in(&arena);
        }
    }

    #[cfg(any(target_os = "linux", windows))]
    fn memory_is_never_writable_and_executable_in(arena: &CodeArena) {
        let s = sharing(arena);
        WATCH_COMMITS.set(true);
        let mut handles = Vec::new();
        for i in 0..64 {
            let len = 1 + (i * 37) % 300;
            handles.push(commit_bytes(arena, &vec![0xC3; len]));
            assert_eq!(writable_and_executable(), vec![], "W+X mapping after commit {i}");
        }
        let big = commit_bytes(arena, &vec![0xC3; 2 * sys::page_size() + 5]);
        WATCH_COMMITS.set(false);
        assert_eq!(writable_and_executable(), vec![]);

        let seen = SEEN_DURING_COMMIT.take();
        assert_eq!(seen.len(), 65);
        // A flipped page is writable, not executable, while it is written; a dual-mapped
        // unit is written through its read+write view and runs from its read+execute one,
        // which stays executable (the big chunk has a flipped mapping of its own).
        let pooled = (format!("rw-{s}"), format!("r-x{s}"));
        let flipped = ("rw-p".to_string(), "rw-p".to_string());
        let expected = if s == "s" { &pooled } else { &flipped };
        assert!(seen[..64].iter().all(|p| p == expected), "mid-commit permissions: {seen:?}");
        assert_eq!(seen[64], flipped);
        for h in &handles {
            assert_eq!(perms_at(h.addr()), Some(format!("r-x{s}")));
        }
        assert_eq!(perms_at(big.addr()).as_deref(), Some("r-xp"));
    }

    /// The W^X checks above can fail: a mapping writable and executable at once is caught,
    /// whether private or shared.
    #[test]
    fn the_check_finds_writable_and_executable_mappings() {
        let maps = vec![
            (0x1000, 0x2000, "r-xs".to_string()),
            (0x2000, 0x3000, "rwxp".to_string()),
            (0x3000, 0x4000, "rw-s".to_string()),
            (0x4000, 0x5000, "rwxs".to_string()),
        ];
        let caught: Vec<usize> = writable_and_executable_in(maps).iter().map(|m| m.0).collect();
        assert_eq!(caught, [0x2000, 0x4000]);
    }

    /// A dual-mapped unit: the view code runs from is not writable, the view it is written
    /// through is not executable, and they show the same bytes.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_dual_mapped_unit_has_a_read_execute_view_and_a_read_write_view() {
        let arena = CodeArena::new();
        let h = commit_bytes(&arena, ADD);
        let base = page_of(h.addr());
        let pool = arena.inner.borrow();
        let Views::Dual { write } = pool.pages[&base].views else {
            panic!("memory files refused on this Linux: units are flipped");
        };
        assert_eq!(perms_at(base).as_deref(), Some("r-xs"));
        assert_eq!(perms_at(write).as_deref(), Some("rw-s"));
        // SAFETY: the writable view of the live unit, as long as the code's chunk.
        let written = unsafe { std::slice::from_raw_parts((write + (h.addr() - base)) as *const u8, ADD.len()) };
        assert_eq!(written, h.code());
        assert_eq!(written, ADD);
    }

    /// Freed committed code's granules are not reused until no unit has room; then one scrub
    /// takes the execute permission of the whole unit away and back (so tools that translate
    /// code drop their stale translations) and frees them. Commits themselves leave the
    /// executable view executable. Guards the fix of the build/drop regression: reusing the
    /// granules at once cost two `mprotect` calls per commit.
    #[test]
    #[cfg(all(target_os = "linux", any(target_arch = "x86", target_arch = "x86_64")))]
    fn freed_code_is_reused_only_after_a_scrub_of_its_unit() {
        let arena = CodeArena::new();
        assert_eq!(sharing(&arena), "s", "memory files refused on this Linux");
        let keep = commit_bytes(&arena, SUB);
        WATCH_COMMITS.set(true);
        let first = commit_bytes(&arena, ADD);
        let at = first.addr();
        drop(first);
        // SAFETY: a freed chunk of a live unit, readable.
        let freed = unsafe { std::slice::from_raw_parts(at as *const u8, GRANULE) };
        assert!(freed.iter().all(|b| *b == INT3), "freed code becomes traps: {freed:x?}");
        let again = commit_bytes(&arena, ADD);
        assert_ne!(again.addr(), at, "freed code is stale until a scrub");
        // An uncommitted reservation's granules are reused at once (no code ran there).
        let r = arena.reserve(GRANULE).unwrap();
        let r_addr = r.addr();
        drop(r);
        assert_eq!(arena.reserve(GRANULE).unwrap().addr(), r_addr);
        assert!(SEEN_SCRUBS.take().is_empty());
        // Fill the unit: the next commit scrubs it and reuses the freed granules.
        let mut fill = Vec::new();
        while arena.inner.borrow().fitting_page(1).is_some() {
            fill.push(arena.reserve(GRANULE).unwrap());
        }
        let reused = commit_bytes(&arena, ADD);
        WATCH_COMMITS.set(false);
        assert_eq!(reused.addr(), at, "the scrub freed the stale granules");
        assert_eq!(SEEN_SCRUBS.take(), ["r--s"], "the unit was not executable during its scrub");
        assert_eq!(arena.stats().pages_mapped, 1, "a scrub instead of a new unit");
        let seen = SEEN_DURING_COMMIT.take();
        assert!(seen.iter().all(|(_, runs)| runs == "r-xs"), "{seen:?}");
        // SAFETY: both handles hold `int(int, int)` code and are alive.
        let add: extern "C" fn(i32, i32) -> i32 = unsafe { std::mem::transmute(reused.addr()) };
        // SAFETY: `keep` holds `int(int, int)` code and is alive.
        let sub: extern "C" fn(i32, i32) -> i32 = unsafe { std::mem::transmute(keep.addr()) };
        assert_eq!((add(5, 3), sub(5, 3)), (8, 2));
        drop((again, fill));
    }

    /// An empty unit kept as spare with stale granules is trimmed and unmapped like any.
    #[test]
    fn a_spare_unit_with_stale_code_is_trimmed() {
        for arena in both_kinds(1) {
            let h = commit_bytes(&arena, ADD);
            drop(h);
            let stats = arena.stats();
            assert_eq!((stats.pages_mapped, stats.spare_pages, stats.bytes_in_use), (1, 1, 0));
            arena.trim();
            assert_eq!(arena.stats(), ArenaStats::default());
        }
    }

    #[test]
    fn an_uncommitted_page_is_not_executable() {
        let [_, arena] = both_kinds(1);
        let r = arena.reserve(64).unwrap();
        if cfg!(any(target_os = "linux", windows)) {
            assert_eq!(perms_at(r.addr()).as_deref(), Some("r--p"));
        }
    }

    /// A dual-mapped unit is executable from the start, so it starts as traps.
    #[test]
    fn an_uncommitted_dual_mapped_unit_holds_only_traps() {
        let arena = CodeArena::with_unit_pages(2);
        let r = arena.reserve(64).unwrap();
        if sharing(&arena) == "s" {
            let base = r.addr() & !(2 * sys::page_size() - 1);
            // SAFETY: the unit is mapped readable while the reservation lives.
            let unit = unsafe { std::slice::from_raw_parts(base as *const u8, 2 * sys::page_size()) };
            assert!(unit.iter().all(|b| *b == INT3));
        }
    }

    #[test]
    fn a_pooled_page_keeps_its_tail_as_traps() {
        let arena = CodeArena::new();
        let page = sys::page_size();
        // Chunks of one granule until a second page is needed: the first page's tail is
        // never handed out.
        let mut handles = vec![commit_bytes(&arena, &[0x90; GRANULE])];
        let first = page_of(handles[0].addr());
        while handles.iter().all(|h| page_of(h.addr()) == first) {
            handles.push(commit_bytes(&arena, &[0x90; GRANULE]));
        }
        let end_of_chunks =
            handles.iter().filter(|h| page_of(h.addr()) == first).map(|h| h.addr() + GRANULE).max().unwrap();
        assert_eq!(end_of_chunks, first + page - PAGE_TAIL);
        // SAFETY: the tail of a mapped, readable arena page.
        let tail = unsafe { std::slice::from_raw_parts((first + page - PAGE_TAIL) as *const u8, PAGE_TAIL) };
        assert!(tail.iter().all(|b| *b == INT3), "{tail:x?}");
    }

    #[test]
    #[cfg(any(target_os = "linux", windows))]
    fn a_pooled_page_sits_between_guard_pages() {
        for arena in both_kinds(1) {
            a_pooled_page_sits_between_guard_pages_in(&arena);
        }
    }

    #[cfg(any(target_os = "linux", windows))]
    fn a_pooled_page_sits_between_guard_pages_in(arena: &CodeArena) {
        let page = sys::page_size();
        let h = commit_bytes(arena, ADD);
        let base = page_of(h.addr());
        assert_eq!(perms_at(base), Some(format!("r-x{}", sharing(arena))));
        assert_eq!(perms_at(base - page).as_deref(), Some("---p"));
        assert_eq!(perms_at(base + page).as_deref(), Some("---p"));
    }

    #[test]
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    fn an_arena_of_larger_units_packs_many_chunks_into_one_mapping() {
        for arena in both_kinds(16) {
            an_arena_of_larger_units_packs_many_chunks_into_one_mapping_in(&arena, 16);
        }
    }

    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    fn an_arena_of_larger_units_packs_many_chunks_into_one_mapping_in(arena: &CodeArena, pages: usize) {
        let page = sys::page_size();
        let unit = pages * page;
        // A thunk-sized chunk: more than a hundred fit in one unit.
        let per_unit = (unit - PAGE_TAIL) / 576;
        let handles: Vec<CodeHandle> = (0..per_unit)
            .map(|_| {
                let mut code = vec![INT3; 576];
                code[..ADD.len()].copy_from_slice(ADD);
                commit_bytes(arena, &code)
            })
            .collect();
        assert!(per_unit > 100);
        let base = handles[0].addr() & !(unit - 1);
        assert!(handles.iter().all(|h| h.addr() & !(unit - 1) == base), "one unit holds them all");
        let stats = arena.stats();
        assert_eq!((stats.pages_mapped, stats.live_chunks), (pages, per_unit));
        // One r-x mapping for the whole unit, between guards; never W+X.
        let maps = maps();
        let m = maps.iter().find(|&&(s, e, _)| s <= base && base < e).unwrap();
        assert_eq!((m.0, m.1, m.2.clone()), (base, base + unit, format!("r-x{}", sharing(arena))));
        assert_eq!(perms_at(base - page).as_deref(), Some("---p"));
        assert_eq!(perms_at(base + unit).as_deref(), Some("---p"));
        assert_eq!(writable_and_executable(), vec![]);
        // SAFETY: the last handle holds `int(int, int)` code and is alive.
        let f: extern "C" fn(i32, i32) -> i32 = unsafe { std::mem::transmute(handles[per_unit - 1].addr()) };
        assert_eq!(f(40, 2), 42);
        // SAFETY: the unit's tail, mapped readable.
        let tail = unsafe { std::slice::from_raw_parts((base + unit - PAGE_TAIL) as *const u8, PAGE_TAIL) };
        assert!(tail.iter().all(|b| *b == INT3));
        drop(handles);
        assert_eq!(arena.stats().spare_pages, pages, "the spare unit counts in pages");
        arena.trim();
        assert_eq!(arena.stats(), ArenaStats::default());
    }

    #[test]
    fn length_mismatch_is_an_error_and_frees_the_reservation() {
        let arena = CodeArena::new();
        let r = arena.reserve(8).unwrap();
        let err = arena.commit(r, &[0xC3; 5]).unwrap_err();
        assert_eq!(err, ArenaError::LengthMismatch { reserved: 8, given: 5 });
        assert_eq!(err.to_string(), "code length mismatch: 8 bytes reserved, 5 bytes given to commit");
        assert_eq!(arena.stats().live_chunks, 0);
        assert_eq!(arena.stats().bytes_in_use, 0);
    }

    #[test]
    fn a_reservation_from_another_arena_is_refused() {
        let (a, b) = (CodeArena::new(), CodeArena::new());
        let r = a.reserve(4).unwrap();
        assert_eq!(b.commit(r, &[0xC3; 4]).unwrap_err(), ArenaError::ForeignReservation);
        assert_eq!(a.stats().live_chunks, 0);
    }

    #[test]
    fn zero_and_absurd_lengths_are_errors() {
        let arena = CodeArena::new();
        assert_eq!(arena.reserve(0).unwrap_err(), ArenaError::ZeroLength);
        assert_eq!(arena.reserve(usize::MAX).unwrap_err(), ArenaError::TooLarge { len: usize::MAX });
        // No address space holds this; a 32-bit process's 4 GiB may hold it once, not twice.
        let absurd = isize::MAX as usize - 2 * sys::page_size();
        let first = arena.reserve(absurd);
        let again = (cfg!(target_pointer_width = "32") && first.is_ok()).then(|| arena.reserve(absurd));
        let refused = again.as_ref().unwrap_or(&first);
        assert!(matches!(refused, Err(ArenaError::Os { call: MAP_CALL, .. })), "{refused:?}");
        drop((first, again));
        assert_eq!(arena.stats(), ArenaStats::default());
    }

    #[test]
    fn freed_space_is_reused() {
        let arena = CodeArena::new();
        let keep = arena.reserve(100).unwrap();
        let a = arena.reserve(48).unwrap();
        let a_addr = a.addr();
        let _b = arena.reserve(48).unwrap();
        drop(a);
        assert_eq!(arena.reserve(40).unwrap().addr(), a_addr, "the hole is filled first");
        assert_eq!(keep.addr() % GRANULE, 0);
        assert_eq!(arena.stats().pages_mapped, 1);
    }

    #[test]
    fn an_empty_page_is_kept_as_spare_then_trimmed() {
        let arena = CodeArena::new();
        let a = arena.reserve(10).unwrap();
        let a_addr = a.addr();
        drop(a);
        let stats = arena.stats();
        assert_eq!((stats.pages_mapped, stats.spare_pages, stats.live_chunks), (1, 1, 0));
        assert_eq!(arena.reserve(10).unwrap().addr(), a_addr, "the spare page is reused");
        arena.trim();
        assert_eq!(arena.stats(), ArenaStats::default());
    }

    #[test]
    fn full_pages_are_not_offered_and_page_sized_chunks_fit() {
        let arena = CodeArena::new();
        let page = sys::page_size();
        // The largest pooled chunk: a page but its tail.
        let whole = arena.reserve(page - PAGE_TAIL).unwrap();
        let small = arena.reserve(1).unwrap();
        assert_ne!(page_of(whole.addr()), page_of(small.addr()));
        assert_eq!(arena.stats().pages_mapped, 2);
        assert_eq!(arena.stats().bytes_in_use, page - PAGE_TAIL + GRANULE);
        // One byte more takes a mapping of its own, with room for the tail.
        let bigger = arena.reserve(page - PAGE_TAIL + 1).unwrap();
        assert_eq!(arena.stats().pages_mapped, 4, "a dedicated mapping of two pages");
        drop((whole, small, bigger));
    }

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    enum Live {
        Reserved(Reservation),
        Committed(CodeHandle, u8),
    }

    impl Live {
        fn span(&self) -> (usize, usize) {
            match self {
                Live::Reserved(r) => (r.addr(), r.len()),
                Live::Committed(h, _) => (h.addr(), h.len()),
            }
        }
    }

    fn check_live(arena: &CodeArena, live: &[Live]) {
        let mut spans: Vec<_> = live.iter().map(Live::span).collect();
        spans.sort_unstable();
        for w in spans.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "chunks overlap: {:x?}", w);
        }
        for l in live {
            if let Live::Committed(h, fill) = l {
                assert!(h.code().iter().all(|b| b == fill), "code at {:#x} was overwritten", h.addr());
            }
        }
        assert_eq!(arena.stats().live_chunks, live.len());
    }

    #[test]
    fn a_hundred_thousand_chunks_come_and_go_and_the_arena_returns_to_baseline() {
        for arena in both_kinds(1) {
            a_hundred_thousand_chunks_come_and_go_in(&arena);
        }
    }

    fn a_hundred_thousand_chunks_come_and_go_in(arena: &CodeArena) {
        let baseline = arena.stats();
        let page = sys::page_size();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut live: Vec<Live> = Vec::new();
        let mut peak_pages = 0;
        for i in 0..100_000 {
            let len = match rng.below(100) {
                0 => page + 1 + rng.below(2 * page),  // dedicated mapping
                1..=9 => 400 + rng.below(page - 400), // big stub, up to a whole page
                _ => 1 + rng.below(300),              // typical stub or thunk
            };
            let r = arena.reserve(len).unwrap();
            assert_eq!(r.addr() % GRANULE, 0);
            if rng.below(4) == 0 {
                let fill = i as u8;
                live.push(Live::Committed(arena.commit(r, &vec![fill; len]).unwrap(), fill));
            } else {
                live.push(Live::Reserved(r));
            }
            // Free in random order: 5,000 steps that tend to grow the live set (up to 3,000
            // chunks), then 5,000 that tend to shrink it, and again.
            let free_percent = if i / 5_000 % 2 == 0 { 40 } else { 60 };
            while live.len() > 3_000 || (rng.below(100) < free_percent && !live.is_empty()) {
                let victim = rng.below(live.len());
                drop(live.swap_remove(victim));
            }
            peak_pages = peak_pages.max(arena.stats().pages_mapped);
            if i % 10_000 == 0 {
                check_live(arena, &live);
            }
        }
        check_live(arena, &live);
        while !live.is_empty() {
            let victim = rng.below(live.len());
            drop(live.swap_remove(victim));
        }
        let after = arena.stats();
        assert!(peak_pages > 10, "the test exercised many pages ({peak_pages})");
        assert_eq!((after.bytes_in_use, after.live_chunks), (0, 0));
        assert!(after.spare_pages <= MAX_SPARE_PAGES);
        assert_eq!(after.pages_mapped, after.spare_pages);
        arena.trim();
        assert_eq!(arena.stats(), baseline);
    }
}
