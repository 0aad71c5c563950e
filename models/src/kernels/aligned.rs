//! Packed weights on 64-byte boundaries: the AVX-512 kernel loads a whole cache line of
//! weights per register, and a load that straddles two lines costs two. `Vec<i8>` is only
//! as aligned as the allocator makes it (16 bytes with glibc). On the 2-core Xeon of
//! session 17, the VNNI tile's inner loop alone ran 8 % faster on aligned weights (747
//! against 691 GOP/s, one thread), a whole layer on one thread about 5 % (62 % of the
//! ceiling against 59 %); on two threads the gain was within the runs' spread.

use std::ops::{Deref, DerefMut};

/// One cache line of bytes; a `Vec` of them starts on a 64-byte boundary.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([i8; 64]);

/// Zero-initialised bytes that start on a 64-byte boundary.
pub(super) struct AlignedBytes {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBytes {
    /// `len` zero bytes.
    pub(super) fn zeroed(len: usize) -> Self {
        AlignedBytes {
            lines: vec![Line([0; 64]); len.div_ceil(64)],
            len,
        }
    }
}

impl Deref for AlignedBytes {
    type Target = [i8];

    fn deref(&self) -> &[i8] {
        // SAFETY: `Line` is 64 plain bytes with no padding (repr(C), size 64), so the
        // lines are `64 · lines.len() ≥ len` initialised bytes in a row.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<i8>(), self.len) }
    }
}

impl DerefMut for AlignedBytes {
    fn deref_mut(&mut self) -> &mut [i8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<i8>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_a_cache_line_and_keeps_its_length() {
        for len in [0, 1, 63, 64, 65, 1000] {
            let mut bytes = AlignedBytes::zeroed(len);
            assert_eq!(bytes.len(), len);
            assert!(bytes.iter().all(|&b| b == 0));
            assert_eq!(bytes.as_ptr() as usize % 64, 0, "len {len}");
            if len > 0 {
                bytes[len - 1] = 7;
                assert_eq!(bytes[len - 1], 7);
            }
        }
    }
}
