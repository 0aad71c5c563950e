//! The AVX2 kernel: `vpmaddwd` multiplies 16-bit copies of the int8 activations and
//! weights in pairs and adds each pair into a 32-bit lane; a 6-row × 16-column tile keeps
//! 12 accumulators in registers, and each weight load serves six rows. Weights stay int8
//! in memory (half the size of 16-bit copies) and are widened as they are loaded.

use super::Epilogue;

/// Output columns per panel: two 256-bit registers of 32-bit sums.
pub(super) const PANEL: usize = 16;

/// Whether this processor runs the kernel.
pub(super) fn supported() -> bool {
    imp::supported()
}

/// Sums `rows` (≤ 6) activation rows of 16-bit integers (`stride` apart, `2·pairs` long)
/// against one packed panel of bytes (`[pairs][16][2]`) and stores them through `ctx`.
pub(super) fn tile(a: &[i16], stride: usize, rows: usize, w: &[i8], pairs: usize, ctx: &Epilogue) {
    assert!((1..=super::TILE_ROWS).contains(&rows));
    assert!(a.len() >= (rows - 1) * stride + 2 * pairs && w.len() >= pairs * 2 * PANEL);
    imp::tile(a, stride, rows, w, pairs, ctx)
}

/// Multiply-adds done by the kernel's inner instructions on one core, from a loop that
/// never touches memory (`iterations` rounds of eight distinct `vpmaddwd` + `vpaddd`, a
/// 4 × 2 tile). Returns the multiply-adds done, or 0 when the processor lacks AVX2.
pub(super) fn ceiling_loop(iterations: u64) -> u64 {
    imp::ceiling_loop(iterations)
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    use super::{Epilogue, PANEL};

    pub(super) fn supported() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    pub(super) fn tile(
        a: &[i16],
        stride: usize,
        rows: usize,
        w: &[i8],
        pairs: usize,
        ctx: &Epilogue,
    ) {
        assert!(
            supported(),
            "the AVX2 kernel ran on a processor without AVX2"
        );
        let (a, w) = (a.as_ptr(), w.as_ptr());
        // SAFETY: the feature check above, and the bounds checked by the caller.
        unsafe {
            match rows {
                1 => tile_rows::<1>(a, stride, w, pairs, ctx),
                2 => tile_rows::<2>(a, stride, w, pairs, ctx),
                3 => tile_rows::<3>(a, stride, w, pairs, ctx),
                4 => tile_rows::<4>(a, stride, w, pairs, ctx),
                5 => tile_rows::<5>(a, stride, w, pairs, ctx),
                _ => tile_rows::<6>(a, stride, w, pairs, ctx),
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile_rows<const MR: usize>(
        a: *const i16,
        stride: usize,
        w: *const i8,
        pairs: usize,
        ctx: &Epilogue,
    ) {
        let mut acc = [[_mm256_setzero_si256(); 2]; MR];
        for p in 0..pairs {
            let wp = w.add(p * 2 * PANEL);
            let w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(wp as *const __m128i));
            let w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(wp.add(PANEL) as *const __m128i));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x =
                    _mm256_set1_epi32((a.add(r * stride + 2 * p) as *const i32).read_unaligned());
                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(x, w0));
                acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(x, w1));
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            if ctx.cols == PANEL {
                let row_scale = _mm256_set1_ps(ctx.row_scales[r]);
                let dst = ctx.out.add(r * ctx.out_stride);
                for (v, &sum) in acc.iter().enumerate() {
                    let scale =
                        _mm256_mul_ps(row_scale, _mm256_loadu_ps(ctx.scales.as_ptr().add(8 * v)));
                    let bias = _mm256_loadu_ps(ctx.bias.as_ptr().add(8 * v));
                    let y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), scale, bias);
                    _mm256_storeu_ps(dst.add(8 * v), y);
                }
            } else {
                let mut sums = [0i32; PANEL];
                _mm256_storeu_si256(sums.as_mut_ptr() as *mut __m256i, acc[0]);
                _mm256_storeu_si256(sums.as_mut_ptr().add(8) as *mut __m256i, acc[1]);
                ctx.store_row(r, &sums);
            }
        }
    }

    pub(super) fn ceiling_loop(iterations: u64) -> u64 {
        if !supported() {
            return 0;
        }
        // SAFETY: feature checked above.
        unsafe { ceiling(iterations) }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn ceiling(iterations: u64) -> u64 {
        // The kernel's shape in registers: broadcast activations of four rows times two
        // weight vectors, eight products each round. Every product must be computed anew:
        // with one `x` and one `y` shared by all accumulators, the compiler computes
        // `vpmaddwd` once per round and the loop times `vpaddd` instead (it did, and
        // reported twice this processor's rate).
        let mut w = [
            _mm256_set1_epi16(std::hint::black_box(5)),
            _mm256_set1_epi16(std::hint::black_box(7)),
        ];
        let x = [
            _mm256_set1_epi32(std::hint::black_box(0x0003_0002)),
            _mm256_set1_epi32(std::hint::black_box(0x0001_0004)),
            _mm256_set1_epi32(std::hint::black_box(0x0006_0001)),
            _mm256_set1_epi32(std::hint::black_box(0x0002_0005)),
        ];
        let mut acc = [[_mm256_setzero_si256(); 2]; 4];
        for _ in 0..iterations {
            // An empty asm that "changes" the weights keeps all eight products in the loop.
            std::arch::asm!(
                "/* {0} {1} */",
                inout(ymm_reg) w[0],
                inout(ymm_reg) w[1],
                options(nomem, nostack, preserves_flags)
            );
            for (row, acc) in acc.iter_mut().enumerate() {
                for (col, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(x[row], w[col]));
                }
            }
        }
        let mut sink = [0i32; 8];
        for a in acc.iter().flatten() {
            _mm256_storeu_si256(sink.as_mut_ptr() as *mut __m256i, *a);
            std::hint::black_box(sink);
        }
        iterations * 8 * 16
    }

    pub(super) fn fma_ceiling_loop(iterations: u64) -> u64 {
        if !supported() {
            return 0;
        }
        // SAFETY: feature checked above.
        unsafe { fma_ceiling(iterations) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn fma_ceiling(iterations: u64) -> u64 {
        let mut x = _mm256_set1_ps(0.999);
        let y = _mm256_set1_ps(std::hint::black_box(1e-3));
        let mut acc = [_mm256_setzero_ps(); 12];
        for _ in 0..iterations {
            std::arch::asm!("/* {0} */", inout(ymm_reg) x, options(nomem, nostack, preserves_flags));
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(x, y, *a);
            }
        }
        let mut sink = [0f32; 8];
        for a in acc {
            _mm256_storeu_ps(sink.as_mut_ptr(), a);
            std::hint::black_box(sink);
        }
        iterations * 12 * 8
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    use super::Epilogue;

    pub(super) fn supported() -> bool {
        false
    }

    pub(super) fn tile(_: &[i16], _: usize, _: usize, _: &[i8], _: usize, _: &Epilogue) {
        unreachable!("the AVX2 kernel is only chosen on x86-64 processors that have it")
    }

    pub(super) fn ceiling_loop(_: u64) -> u64 {
        0
    }

    pub(super) fn fma_ceiling_loop(_: u64) -> u64 {
        0
    }
}

/// f32 multiply-adds done by a loop of 12 independent 256-bit FMAs that never touches
/// memory, or 0 without AVX2/FMA.
pub(super) fn fma_ceiling_loop(iterations: u64) -> u64 {
    imp::fma_ceiling_loop(iterations)
}
