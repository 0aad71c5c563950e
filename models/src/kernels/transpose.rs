//! The keys of one attention head, turned from rows (one per token, `d` values each, as the
//! QKV product writes them) into columns (one row per key element, `wide` tokens each), so
//! that 32 keys' scores are two vector updates per query element.
//!
//! One value at a time this took about half as long as the score products it feeds (a
//! scalar load and store per value, every store to another cache line). With AVX-512 a
//! 16 × 16 block goes through registers in 64 shuffles: 16 loads and 16 stores instead of
//! 256 of each; with AVX2, an 8 × 8 block in 24.

#[cfg(target_arch = "x86_64")]
use super::elementwise::level;
#[cfg(target_arch = "x86_64")]
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
    match level() {
        Kernel::Avx512Vnni | Kernel::Amx if d.is_multiple_of(16) => {
            // SAFETY: the level is only AVX-512 VNNI on processors with AVX-512 F (its
            // kernel checks), and the bounds were checked above.
            unsafe {
                avx512::keys_to_columns(Keys {
                    keys,
                    stride,
                    d,
                    len,
                    columns,
                    wide,
                })
            };
            return;
        }
        Kernel::Avx2 | Kernel::AvxVnni if d.is_multiple_of(8) => {
            // SAFETY: both levels are only chosen on processors with AVX2 (their kernels
            // check), and the bounds were checked above.
            unsafe {
                avx2::keys_to_columns(Keys {
                    keys,
                    stride,
                    d,
                    len,
                    columns,
                    wide,
                })
            };
            return;
        }
        _ => {}
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

/// The keys of one head and where their columns go, as [`keys_to_columns`] checked them.
#[cfg(target_arch = "x86_64")]
struct Keys<'a> {
    keys: &'a [f32],
    stride: usize,
    d: usize,
    len: usize,
    columns: &'a mut [f32],
    wide: usize,
}

/// Walks the columns in square blocks of `W` keys by `W` elements: a block's keys are
/// loaded as rows (tokens past the post are zero keys), turned in registers, and stored as
/// columns. Every instruction set brings its own row type and turn; inlined into each
/// caller, so that the caller's target features reach them.
///
/// # Safety
/// `load` and `store` must be sound for `W` values at any in-bounds block start: `d` and
/// `wide` multiples of `W`, `wide ≥ len ≥ 1`, and the slices as long as
/// [`keys_to_columns`] checks.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn by_blocks<R: Copy, const W: usize>(
    k: Keys<'_>,
    zero: R,
    load: impl Fn(*const f32) -> R,
    turn: impl Fn([R; W]) -> [R; W],
    store: impl Fn(*mut f32, R),
) {
    let src = k.keys.as_ptr();
    let dst = k.columns.as_mut_ptr();
    for j0 in (0..k.wide).step_by(W) {
        for t0 in (0..k.d).step_by(W) {
            let mut rows = [zero; W];
            for (j, row) in rows.iter_mut().enumerate().take(k.len.saturating_sub(j0)) {
                // SAFETY: token j0 + j < len, and its W values from t0 lie in `keys`.
                *row = load(unsafe { src.add((j0 + j) * k.stride + t0) });
            }
            for (t, row) in turn(rows).into_iter().enumerate() {
                // SAFETY: row t0 + t < d of `columns`, W values from j0 < wide.
                store(unsafe { dst.add((t0 + t) * k.wide + j0) }, row);
            }
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
    pub(super) unsafe fn keys_to_columns(k: super::Keys<'_>) {
        // SAFETY: as this function's own contract; the pointers are in bounds there.
        unsafe {
            super::by_blocks::<__m512, 16>(
                k,
                _mm512_setzero_ps(),
                |p| _mm512_loadu_ps(p),
                |b| transpose16(b),
                |p, r| _mm512_storeu_ps(p, r),
            )
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

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX2 must be present; `d` a multiple of 8, `wide` a multiple of 8 not below
    /// `len ≥ 1`, and the slices as long as [`super::keys_to_columns`] checks.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn keys_to_columns(k: super::Keys<'_>) {
        // SAFETY: as this function's own contract; the pointers are in bounds there.
        unsafe {
            super::by_blocks::<__m256, 8>(
                k,
                _mm256_setzero_ps(),
                |p| _mm256_loadu_ps(p),
                |b| transpose8(b),
                |p, r| _mm256_storeu_ps(p, r),
            )
        }
    }

    /// The transpose of an 8 × 8 block: rows interleaved by 32 bits, then by 64 within
    /// 128-bit lanes, then the lanes of rows 0–3 and 4–7 put together.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        let mut t = [_mm256_setzero_ps(); 8];
        for i in 0..4 {
            t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        // s[4h + k]: column k (and k + 4 in the high lane) of rows 4h..4h + 4.
        let mut s = [_mm256_setzero_ps(); 8];
        for h in 0..2 {
            let (a, b, c, e) = (t[4 * h], t[4 * h + 1], t[4 * h + 2], t[4 * h + 3]);
            s[4 * h] = _mm256_shuffle_ps::<0x44>(a, c);
            s[4 * h + 1] = _mm256_shuffle_ps::<0xEE>(a, c);
            s[4 * h + 2] = _mm256_shuffle_ps::<0x44>(b, e);
            s[4 * h + 3] = _mm256_shuffle_ps::<0xEE>(b, e);
        }
        let mut out = [_mm256_setzero_ps(); 8];
        for k in 0..4 {
            out[k] = _mm256_permute2f128_ps::<0x20>(s[k], s[4 + k]);
            out[4 + k] = _mm256_permute2f128_ps::<0x31>(s[k], s[4 + k]);
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
            // Each vector path directly, whatever the level this processor runs at.
            #[cfg(target_arch = "x86_64")]
            if len > 0 {
                let check = |name: &str, got: &[f32]| {
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(g.to_bits(), w.to_bits(), "{name}: d {d} len {len} at {i}");
                    }
                };
                if d.is_multiple_of(8) && is_x86_feature_detected!("avx2") {
                    let mut got = vec![f32::NAN; d * wide];
                    // SAFETY: AVX2 checked; shapes as keys_to_columns checks them.
                    unsafe {
                        avx2::keys_to_columns(Keys {
                            keys: &keys,
                            stride,
                            d,
                            len,
                            columns: &mut got,
                            wide,
                        })
                    };
                    check("avx2", &got);
                }
                if d.is_multiple_of(16) && is_x86_feature_detected!("avx512f") {
                    let mut got = vec![f32::NAN; d * wide];
                    // SAFETY: AVX-512 F checked; shapes as keys_to_columns checks them.
                    unsafe {
                        avx512::keys_to_columns(Keys {
                            keys: &keys,
                            stride,
                            d,
                            len,
                            columns: &mut got,
                            wide,
                        })
                    };
                    check("avx512", &got);
                }
            }
        }
    }
}
