//! The hasher of the crate's own maps (the type table's interning map, the declaration
//! scope): rustc's FxHash, one rotate, xor and multiply per word.
//!
//! The keys are types and names from declarations the program makes itself, so the
//! resistance to chosen collisions that std's SipHash buys is not needed here, while SipHash
//! cost about a tenth of declaring a function type (callgrind: hashing a parameter list word
//! by word with SipHash's rounds, twice per new type, and again whenever the map grows).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash's state: the hash so far.
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct FxHasher {
    hash: u64,
}

/// FxHash's multiplier (from Firefox, via rustc).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        let n = rest.len();
        if n > 0 {
            // The tail without a copy of variable length (a call to `memcpy`): from 4 bytes
            // on, its first and last 4, which overlap; below, its first, middle and last
            // bytes. With its length, either is the whole tail.
            let last = if n >= 4 {
                let first4 = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
                let last4 = u32::from_le_bytes(rest[n - 4..].try_into().expect("4 bytes"));
                u64::from(first4) | u64::from(last4) << 32
            } else {
                u64::from(rest[0]) | u64::from(rest[n / 2]) << 8 | u64::from(rest[n - 1]) << 16
            };
            // The length too, so that "a" and "a\0" differ.
            self.add(last ^ ((n as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(n as u64);
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.add(n as u64);
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(n as u64);
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` hashed with [`FxHasher`].
pub(crate) type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A `HashSet` hashed with [`FxHasher`].
pub(crate) type FxHashSet<T> = std::collections::HashSet<T, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash + ?Sized>(v: &T) -> u64 {
        BuildHasherDefault::<FxHasher>::default().hash_one(v)
    }

    #[test]
    fn equal_values_hash_alike_and_close_ones_apart() {
        assert_eq!(hash("int"), hash(&"int".to_string()));
        let names = [
            "a",
            "a\0",
            "b",
            "ab",
            "ba",
            "int",
            "int64_t",
            "int64_u",
            "",
            "abcdefgh",
            "abcdefghi",
            "abc",
            "axc",
            "acb",
            "bac",
            "abcd",
            "abce",
            "xbcd",
            "abcde",
            "abcdf",
            "abxde",
            "axcde",
            "abcdef",
            "abcxef",
        ];
        let mut hashes: Vec<u64> = names.iter().map(|n| hash(*n)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), names.len(), "a collision among {names:?}");
        assert_ne!(hash(&[1u32, 2][..]), hash(&[2u32, 1][..]), "order counts");
    }

    #[test]
    fn a_map_finds_every_key() {
        let mut m: FxHashMap<String, usize> = FxHashMap::default();
        for i in 0..10_000 {
            m.insert(format!("f{i}"), i);
        }
        assert!((0..10_000).all(|i| m[&format!("f{i}")] == i));
        assert_eq!(m.get("f10000"), None);
    }
}
