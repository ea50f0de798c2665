//! [`InlineList`]: a short list kept inline, for lists that never exceed a small bound the
//! model states (an argument's [`crate::Part`]s, the operands of one step of a code
//! generator's program). Planning a new signature is on the path of its first call, and one
//! allocation per argument and per step was a fifth of that cost.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};

/// Up to `N` values of `T`, inline; reads as a slice. The slots past the length hold
/// `T::default()`, never read.
#[derive(Clone, Copy)]
pub struct InlineList<T: Copy + Default, const N: usize> {
    len: u8,
    items: [T; N],
}

impl<T: Copy + Default, const N: usize> InlineList<T, N> {
    /// The most values the list holds.
    pub const CAPACITY: usize = N;

    /// The list of `items`, in order.
    ///
    /// # Panics
    /// With more than `N`: the bound is a rule of the model (e.g. no argument has more
    /// parts), so more is a bug where the list is made.
    pub fn new(items: &[T]) -> Self {
        assert!(items.len() <= N && N <= u8::MAX as usize, "{} values in a list of at most {N}", items.len());
        let mut list = InlineList { len: items.len() as u8, items: [T::default(); N] };
        list.items[..items.len()].copy_from_slice(items);
        list
    }

    /// Adds `item` after the others.
    ///
    /// # Panics
    /// When `N` are held already (see [`InlineList::new`]).
    pub fn push(&mut self, item: T) {
        assert!((self.len as usize) < N, "more than {N} values in a list of at most {N}");
        self.items[self.len as usize] = item;
        self.len += 1;
    }

    /// Removes and returns the last value.
    pub fn pop(&mut self) -> Option<T> {
        self.len = self.len.checked_sub(1)?;
        Some(self.items[self.len as usize])
    }

    /// The values as a slice.
    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len as usize]
    }
}

impl<T: Copy + Default, const N: usize> Deref for InlineList<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Copy + Default, const N: usize> DerefMut for InlineList<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.items[..self.len as usize]
    }
}

impl<'a, T: Copy + Default, const N: usize> IntoIterator for &'a InlineList<T, N> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<T: Copy + Default, const N: usize> Default for InlineList<T, N> {
    /// The empty list.
    fn default() -> Self {
        InlineList::new(&[])
    }
}

impl<T: Copy + Default + PartialEq, const N: usize> PartialEq for InlineList<T, N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Copy + Default + Eq, const N: usize> Eq for InlineList<T, N> {}

impl<T: Copy + Default + Hash, const N: usize> Hash for InlineList<T, N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl<T: Copy + Default + fmt::Debug, const N: usize> fmt::Debug for InlineList<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::InlineList;

    #[test]
    fn an_inline_list_reads_as_the_slice_it_was_given() {
        let mut l = InlineList::<u32, 3>::new(&[1, 2]);
        assert_eq!(&*l, &[1, 2]);
        l.push(3);
        assert_eq!(&*l, &[1, 2, 3]);
        assert_eq!(l.pop(), Some(3));
        l[0] = 7;
        assert_eq!(l, InlineList::new(&[7, 2]), "equality ignores the unused slots");
        assert_eq!(format!("{l:?}"), "[7, 2]");
        assert_eq!(InlineList::<u32, 3>::new(&[]).pop(), None);
    }

    #[test]
    #[should_panic(expected = "4 values in a list of at most 3")]
    fn a_list_past_its_bound_is_refused() {
        InlineList::<u32, 3>::new(&[1, 2, 3, 4]);
    }

    #[test]
    #[should_panic(expected = "more than 2 values")]
    fn a_push_past_the_bound_is_refused() {
        let mut l = InlineList::<u32, 2>::new(&[1, 2]);
        l.push(3);
    }
}
