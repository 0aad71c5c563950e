//! The AVX-VNNI kernel, for processors with the 256-bit `vpdpbusd` but no AVX-512 (Intel
//! Alder Lake and later client cores, some Xeons with AVX-512 turned off): four unsigned
//! activation bytes times four signed weight bytes into each 32-bit lane in one
//! instruction, where AVX2 needs `vpmaddwd` and `vpaddd` on 16-bit copies for two. A tile
//! is 6 rows × 16 columns: 12 accumulators, two weight registers and one broadcast fill
//! 15 of the 16 vector registers; each 64-byte weight load serves six rows. Activations
//! are stored as `q + 128`, as for the AVX-512 kernel, with the same `shift_comp`.

use super::Epilogue;

/// Output columns per panel: two 256-bit registers of 32-bit sums.
pub(super) const PANEL: usize = 16;

/// Whether this processor runs the kernel.
pub(super) fn supported() -> bool {
    imp::supported()
}

/// Sums `rows` (≤ 6) rows of shifted activations (`q + 128`, `stride` apart, `4·quads`
/// long) against one packed panel (`[quads][16][4]`) and stores them through `ctx`.
pub(super) fn tile(a: &[u8], stride: usize, rows: usize, w: &[i8], quads: usize, ctx: &Epilogue) {
    assert!((1..=super::TILE_ROWS).contains(&rows));
    assert!(a.len() >= (rows - 1) * stride + 4 * quads && w.len() >= quads * 4 * PANEL);
    imp::tile(a, stride, rows, w, quads, ctx)
}

/// Multiply-adds done by a loop of 12 independent 256-bit `vpdpbusd` that never touches
/// memory (`iterations` rounds), or 0 when the processor lacks AVX-VNNI.
pub(super) fn ceiling_loop(iterations: u64) -> u64 {
    imp::ceiling_loop(iterations)
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    use super::{Epilogue, PANEL};

    pub(super) fn supported() -> bool {
        is_x86_feature_detected!("avxvnni")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
    }

    pub(super) fn tile(
        a: &[u8],
        stride: usize,
        rows: usize,
        w: &[i8],
        quads: usize,
        ctx: &Epilogue,
    ) {
        assert!(
            supported(),
            "the AVX-VNNI kernel ran on a processor without AVX-VNNI"
        );
        let (a, w) = (a.as_ptr(), w.as_ptr());
        // SAFETY: the feature check above, and the bounds checked by the caller.
        unsafe {
            match rows {
                1 => tile_rows::<1>(a, stride, w, quads, ctx),
                2 => tile_rows::<2>(a, stride, w, quads, ctx),
                3 => tile_rows::<3>(a, stride, w, quads, ctx),
                4 => tile_rows::<4>(a, stride, w, quads, ctx),
                5 => tile_rows::<5>(a, stride, w, quads, ctx),
                _ => tile_rows::<6>(a, stride, w, quads, ctx),
            }
        }
    }

    #[target_feature(enable = "avx2,fma,avxvnni")]
    unsafe fn tile_rows<const MR: usize>(
        a: *const u8,
        stride: usize,
        w: *const i8,
        quads: usize,
        ctx: &Epilogue,
    ) {
        let mut acc = [[_mm256_setzero_si256(); 2]; MR];
        // Two steps of `k` per turn of the loop, as in the AVX-512 kernel.
        let mut q = 0;
        while q + 2 <= quads {
            step::<MR>(&mut acc, a, stride, w, q);
            step::<MR>(&mut acc, a, stride, w, q + 1);
            q += 2;
        }
        if q < quads {
            step::<MR>(&mut acc, a, stride, w, q);
        }
        for (r, acc) in acc.iter().enumerate() {
            if ctx.cols == PANEL {
                let row_scale = _mm256_set1_ps(ctx.row_scales[r]);
                let dst = ctx.out.add(r * ctx.out_stride);
                for (v, &sum) in acc.iter().enumerate() {
                    let comp =
                        _mm256_loadu_si256(ctx.shift_comp.as_ptr().add(8 * v) as *const __m256i);
                    let scale =
                        _mm256_mul_ps(row_scale, _mm256_loadu_ps(ctx.scales.as_ptr().add(8 * v)));
                    let bias = _mm256_loadu_ps(ctx.bias.as_ptr().add(8 * v));
                    let sum = _mm256_cvtepi32_ps(_mm256_sub_epi32(sum, comp));
                    _mm256_storeu_ps(dst.add(8 * v), _mm256_fmadd_ps(sum, scale, bias));
                }
            } else {
                let mut sums = [0i32; PANEL];
                _mm256_storeu_si256(sums.as_mut_ptr() as *mut __m256i, acc[0]);
                _mm256_storeu_si256(sums.as_mut_ptr().add(8) as *mut __m256i, acc[1]);
                ctx.store_row(r, &sums);
            }
        }
    }

    /// One step of `k` (four bytes) for every row of the tile against the panel's 16
    /// columns.
    #[inline(always)]
    unsafe fn step<const MR: usize>(
        acc: &mut [[__m256i; 2]; MR],
        a: *const u8,
        stride: usize,
        w: *const i8,
        q: usize,
    ) {
        let wp = w.add(q * 4 * PANEL) as *const __m256i;
        let w0 = _mm256_loadu_si256(wp);
        let w1 = _mm256_loadu_si256(wp.add(1));
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = _mm256_set1_epi32((a.add(r * stride + 4 * q) as *const i32).read_unaligned());
            acc[0] = _mm256_dpbusd_avx_epi32(acc[0], x, w0);
            acc[1] = _mm256_dpbusd_avx_epi32(acc[1], x, w1);
        }
    }

    pub(super) fn ceiling_loop(iterations: u64) -> u64 {
        if !supported() {
            return 0;
        }
        // SAFETY: feature checked above.
        unsafe { ceiling(iterations) }
    }

    #[target_feature(enable = "avx2,avxvnni")]
    unsafe fn ceiling(iterations: u64) -> u64 {
        let mut x = _mm256_set1_epi8(3);
        let y = _mm256_set1_epi8(std::hint::black_box(5));
        let mut acc = [_mm256_setzero_si256(); 12];
        for _ in 0..iterations {
            // An empty asm that "changes" x keeps the products inside the loop.
            std::arch::asm!("/* {0} */", inout(ymm_reg) x, options(nomem, nostack, preserves_flags));
            for a in acc.iter_mut() {
                *a = _mm256_dpbusd_avx_epi32(*a, x, y);
            }
        }
        let mut sink = [0i32; 8];
        for a in acc {
            _mm256_storeu_si256(sink.as_mut_ptr() as *mut __m256i, a);
            std::hint::black_box(sink);
        }
        iterations * 12 * 32
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    use super::Epilogue;

    pub(super) fn supported() -> bool {
        false
    }

    pub(super) fn tile(_: &[u8], _: usize, _: usize, _: &[i8], _: usize, _: &Epilogue) {
        unreachable!("the AVX-VNNI kernel is only chosen on x86-64 processors that have it")
    }

    pub(super) fn ceiling_loop(_: u64) -> u64 {
        0
    }
}
