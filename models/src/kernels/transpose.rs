//! The keys of one attention head, turned from rows (one per token, `d` values each, as the
//! QKV product writes them) into columns (one row per key element, `wide` tokens each), so
//! that 32 keys' scores are two vector updates per query element.
//!
//! One value at a time this took about half as long as the score products it feeds (a
//! scalar load and store per value, every store to another cache line). With AVX-512 a
//! 16 × 16 block goes through registers in 64 shuffles: 16 loads and 16 stores instead of
//! 256 of each.

use super::elementwise::level;
use super::Kernel;

/// Writes `columns[t · wide + j] = keys[j · stride + t]` for `t < d`, `j < len`, and zero
/// for `len ≤ j < wide`.
///
/// # Panics
/// If `wide` is below `len` or not a multiple of 16, or a slice is too short.
pub fn keys_to_columns(
    keys: &[f32],
    stride: usize,
    d: usize,
    len: usize,
    columns: &mut [f32],
    wide: usize,
) {
    assert!(wide >= len && wide.is_multiple_of(16), "bad column width");
    assert!(columns.len() >= d * wide, "columns too short");
    if len == 0 {
        columns[..d * wide].fill(0.0);
        return;
    }
    assert!(keys.len() >= (len - 1) * stride + d, "keys too short");
    #[cfg(target_arch = "x86_64")]
    if level() == Kernel::Avx512Vnni && d.is_multiple_of(16) {
        // SAFETY: the level is only AVX-512 VNNI on processors with AVX-512 F (its kernel
        // checks), and the bounds were checked above.
        unsafe { avx512::keys_to_columns(keys, stride, d, len, columns, wide) };
        return;
    }
    plain(keys, stride, d, len, columns, wide);
}

/// One value at a time: the reference, and the path for other processors and head sizes.
fn plain(keys: &[f32], stride: usize, d: usize, len: usize, columns: &mut [f32], wide: usize) {
    for (t, row) in columns.chunks_exact_mut(wide).take(d).enumerate() {
        for (j, value) in row.iter_mut().enumerate() {
            *value = if j < len { keys[j * stride + t] } else { 0.0 };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX-512 F must be present; `d` a multiple of 16, `wide` a multiple of 16 not below
    /// `len ≥ 1`, and the slices as long as [`super::keys_to_columns`] checks.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn keys_to_columns(
        keys: &[f32],
        stride: usize,
        d: usize,
        len: usize,
        columns: &mut [f32],
        wide: usize,
    ) {
        let src = keys.as_ptr();
        let dst = columns.as_mut_ptr();
        for j0 in (0..wide).step_by(16) {
            for t0 in (0..d).step_by(16) {
                let mut rows = [_mm512_setzero_ps(); 16];
                for (j, row) in rows.iter_mut().enumerate() {
                    // Tokens past the post are zero keys.
                    if j0 + j < len {
                        *row = _mm512_loadu_ps(src.add((j0 + j) * stride + t0));
                    }
                }
                let out = transpose16(rows);
                for (t, row) in out.iter().enumerate() {
                    _mm512_storeu_ps(dst.add((t0 + t) * wide + j0), *row);
                }
            }
        }
    }

    /// The transpose of a 16 × 16 block held in 16 registers: pairs of rows interleaved
    /// by 32 bits, then by 64, then 128-bit lanes gathered across groups of four rows.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
        // Within each 128-bit lane: t[2i] = a0 b0 a1 b1, t[2i+1] = a2 b2 a3 b3 (rows 2i, 2i+1).
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        // Within each lane, for the four rows of group g: u[4g + k] = column k of the lane.
        let mut u = [_mm512_setzero_ps(); 16];
        for g in 0..4 {
            let (a, b, c, e) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
            let pd = _mm512_castps_pd;
            u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(a), pd(c)));
            u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(a), pd(c)));
            u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(b), pd(e)));
            u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(b), pd(e)));
        }
        // Column 4·lane + k gathers lane `lane` of u[k], u[4 + k], u[8 + k], u[12 + k].
        let mut out = [_mm512_setzero_ps(); 16];
        for k in 0..4 {
            let even01 = _mm512_shuffle_f32x4::<0x88>(u[k], u[4 + k]);
            let even23 = _mm512_shuffle_f32x4::<0x88>(u[8 + k], u[12 + k]);
            let odd01 = _mm512_shuffle_f32x4::<0xDD>(u[k], u[4 + k]);
            let odd23 = _mm512_shuffle_f32x4::<0xDD>(u[8 + k], u[12 + k]);
            out[k] = _mm512_shuffle_f32x4::<0x88>(even01, even23);
            out[8 + k] = _mm512_shuffle_f32x4::<0xDD>(even01, even23);
            out[4 + k] = _mm512_shuffle_f32x4::<0x88>(odd01, odd23);
            out[12 + k] = _mm512_shuffle_f32x4::<0xDD>(odd01, odd23);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::XorShift;

    #[test]
    fn every_path_matches_the_plain_transpose_on_odd_lengths() {
        let mut rng = XorShift::new(11);
        for (d, len, stride) in [
            (32usize, 27usize, 1152usize),
            (32, 1, 96),
            (32, 16, 40),
            (16, 33, 20),
            (48, 64, 50),
            (40, 5, 45),
            (32, 0, 32),
        ] {
            let wide = len.max(1).div_ceil(32) * 32;
            let keys = rng.vec(len.max(1) * stride + d, 2.0);
            let mut want = vec![f32::NAN; d * wide];
            plain(&keys, stride, d, len, &mut want, wide);
            let mut got = vec![f32::NAN; d * wide];
            keys_to_columns(&keys, stride, d, len, &mut got, wide);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g.to_bits(), w.to_bits(), "d {d} len {len} at {i}");
            }
            for t in 0..d {
                for j in 0..wide {
                    let expected = if j < len { keys[j * stride + t] } else { 0.0 };
                    assert_eq!(want[t * wide + j], expected);
                }
            }
        }
    }
}
