//! [`Chunks`]: values kept at addresses that never change, many to an allocation.
//!
//! What a state makes once and keeps until it closes (a type's descriptor, a signature's
//! tier-0 data, a compiled program's words) is pointed to by address from generated code and
//! other descriptors, so it cannot move. One allocation each (a `Box`) cost a first call
//! ~190 instructions per value, mostly from the heap's top, and 16 bytes of header; a chunk
//! holds many values and never grows, so none moves.

use std::ptr::NonNull;

/// Values of `T` in chunks of at least `CHUNK` that are never pushed to beyond their
/// capacity, so a value stays where it was put until the `Chunks` is dropped (which drops
/// every value).
pub struct Chunks<T, const CHUNK: usize> {
    chunks: Vec<Vec<T>>,
}

impl<T, const CHUNK: usize> Default for Chunks<T, CHUNK> {
    fn default() -> Self {
        Chunks { chunks: Vec::new() }
    }
}

impl<T, const CHUNK: usize> Chunks<T, CHUNK> {
    /// The chunk with room for `n` more values: the last one, or a new one.
    fn room_for(&mut self, n: usize) -> &mut Vec<T> {
        if self.chunks.last().is_none_or(|c| c.capacity() - c.len() < n) {
            self.chunks.push(Vec::with_capacity(n.max(CHUNK)));
        }
        self.chunks.last_mut().expect("a chunk with room was pushed above")
    }

    /// Keeps `value`; its address stays valid, and the value where it is, as long as `self`.
    pub fn push(&mut self, value: T) -> NonNull<T> {
        let chunk = self.room_for(1);
        chunk.push(value);
        NonNull::from(chunk.last_mut().expect("pushed above"))
    }

    /// Keeps the values of `first`, then those of `then`, one after another; the address of
    /// the first (dangling when there are none), valid for all of them as long as `self`.
    ///
    /// # Panics
    /// When an iterator has fewer values than its `len` said (more are left unread).
    pub fn extend(
        &mut self,
        first: impl ExactSizeIterator<Item = T>,
        then: impl ExactSizeIterator<Item = T>,
    ) -> NonNull<T> {
        let (a, b) = (first.len(), then.len());
        let chunk = self.room_for(a + b);
        let start = chunk.len();
        // Within the capacity `room_for` found: the chunk does not reallocate. Each list is
        // added in one go (a slice's iterator says its length exactly): through one chained
        // iterator, each value was a capacity check and a branch.
        chunk.extend(first.take(a));
        chunk.extend(then.take(b));
        assert_eq!(chunk.len() - start, a + b, "fewer values than said");
        NonNull::from(&mut chunk[start..]).cast()
    }

    /// How many values are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::Chunks;

    /// Values keep their addresses while more are pushed, past many chunks, and slices are
    /// kept whole in one chunk (a longer one in a chunk of its own).
    #[test]
    fn values_never_move() {
        let mut c: Chunks<u64, 4> = Chunks::default();
        let firsts: Vec<_> = (0..10u64).map(|i| (c.push(i), i)).collect();
        let slice = c.extend([7u64, 8].into_iter(), [9u64].into_iter());
        let long = c.extend(std::iter::empty(), (0..9u32).map(u64::from));
        for i in 100..200u64 {
            c.push(i);
        }
        for (p, i) in firsts {
            // SAFETY: `p` was returned by `c`, which is alive.
            assert_eq!(unsafe { *p.as_ptr() }, i);
        }
        // SAFETY: both were returned by `c`, alive, for 3 and 9 values.
        unsafe {
            assert_eq!(std::slice::from_raw_parts(slice.as_ptr(), 3), [7, 8, 9]);
            assert_eq!(std::slice::from_raw_parts(long.as_ptr(), 9), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
        }
        assert_eq!(c.len(), 10 + 3 + 9 + 100);
    }
}
