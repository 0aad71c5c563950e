//! The aarch64 kernel: `sdot` (the dot-product extension of Armv8.2, on every Graviton,
//! Ampere, Apple and Cortex-A76-or-later core) multiplies four signed bytes of a weight
//! column by four signed bytes of an activation row and adds them into one 32-bit lane.
//! It reads the AVX-VNNI kernel's packing (panels of 16 columns, quads along `k`), with
//! signed activations, so no shift and no correction are needed; a 6-row × 16-column
//! tile keeps 24 accumulators in the 32 vector registers.

use super::Epilogue;

/// Output columns per panel: four 128-bit registers of 32-bit sums.
pub(super) const PANEL: usize = 16;

/// Whether this processor runs the kernel.
pub(super) fn supported() -> bool {
    imp::supported()
}

/// Sums `rows` (≤ 6) signed activation rows (`stride` apart, `4·quads` long) against one
/// packed panel (`[quads][16][4]`) and stores them through `ctx`.
pub(super) fn tile(a: &[i8], stride: usize, rows: usize, w: &[i8], quads: usize, ctx: &Epilogue) {
    assert!((1..=super::TILE_ROWS).contains(&rows));
    assert!(a.len() >= (rows - 1) * stride + 4 * quads && w.len() >= quads * 4 * PANEL);
    imp::tile(a, stride, rows, w, quads, ctx)
}

/// Multiply-adds done by `iterations` rounds of twelve `sdot` into distinct accumulators
/// (a 3 × 4 register tile) on one core, or 0 without the extension.
pub(super) fn ceiling_loop(iterations: u64) -> u64 {
    imp::ceiling_loop(iterations)
}

/// f32 multiply-adds done by a loop of twelve independent 128-bit `fmla`, or 0 off
/// aarch64.
pub(super) fn fma_ceiling_loop(iterations: u64) -> u64 {
    imp::fma_ceiling_loop(iterations)
}

#[cfg(target_arch = "aarch64")]
mod imp {
    use std::arch::aarch64::*;

    use super::{Epilogue, PANEL};

    pub(super) fn supported() -> bool {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }

    /// `acc[i] += Σ_j a[4i + j] · b[4i + j]`, one `sdot`. Written as assembly because
    /// `vdotq_s32` is not yet a stable intrinsic.
    #[inline(always)]
    unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        let mut acc = acc;
        std::arch::asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
        acc
    }

    pub(super) fn tile(
        a: &[i8],
        stride: usize,
        rows: usize,
        w: &[i8],
        quads: usize,
        ctx: &Epilogue,
    ) {
        assert!(
            supported(),
            "the NEON kernel ran on a processor without the dot-product extension"
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

    #[target_feature(enable = "neon,dotprod")]
    unsafe fn tile_rows<const MR: usize>(
        a: *const i8,
        stride: usize,
        w: *const i8,
        quads: usize,
        ctx: &Epilogue,
    ) {
        let mut acc = [[vdupq_n_s32(0); 4]; MR];
        for q in 0..quads {
            let wp = w.add(q * 4 * PANEL);
            let ws = [
                vld1q_s8(wp),
                vld1q_s8(wp.add(16)),
                vld1q_s8(wp.add(32)),
                vld1q_s8(wp.add(48)),
            ];
            for (r, acc) in acc.iter_mut().enumerate() {
                // The row's four bytes at this quad, in every lane.
                let four = (a.add(r * stride + 4 * q) as *const i32).read_unaligned();
                let x = vreinterpretq_s8_s32(vdupq_n_s32(four));
                for (sum, &wv) in acc.iter_mut().zip(&ws) {
                    *sum = sdot(*sum, wv, x);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            if ctx.cols == PANEL {
                let row_scale = ctx.row_scales[r];
                let dst = ctx.out.add(r * ctx.out_stride);
                for (v, &sum) in acc.iter().enumerate() {
                    let scale = vmulq_n_f32(vld1q_f32(ctx.scales.as_ptr().add(4 * v)), row_scale);
                    let bias = vld1q_f32(ctx.bias.as_ptr().add(4 * v));
                    vst1q_f32(dst.add(4 * v), vfmaq_f32(bias, vcvtq_f32_s32(sum), scale));
                }
            } else {
                let mut sums = [0i32; PANEL];
                for (v, &sum) in acc.iter().enumerate() {
                    vst1q_s32(sums.as_mut_ptr().add(4 * v), sum);
                }
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

    #[target_feature(enable = "neon,dotprod")]
    unsafe fn ceiling(iterations: u64) -> u64 {
        let w = [1, 2, 3, 4].map(|v| vdupq_n_s8(std::hint::black_box(v)));
        let x = [5, 6, 7].map(|v| vdupq_n_s8(std::hint::black_box(v)));
        let mut acc = [[vdupq_n_s32(0); 4]; 3];
        for _ in 0..iterations {
            // Each sum feeds the next round's, so no product can be hoisted or shared.
            for (row, acc) in acc.iter_mut().enumerate() {
                for (col, a) in acc.iter_mut().enumerate() {
                    *a = sdot(*a, w[col], x[row]);
                }
            }
        }
        let mut sink = [0i32; 4];
        for a in acc.iter().flatten() {
            vst1q_s32(sink.as_mut_ptr(), *a);
            std::hint::black_box(sink);
        }
        iterations * 12 * 16
    }

    pub(super) fn fma_ceiling_loop(iterations: u64) -> u64 {
        // SAFETY: NEON is part of every aarch64 target Rust builds for.
        unsafe { fma_ceiling(iterations) }
    }

    #[target_feature(enable = "neon")]
    unsafe fn fma_ceiling(iterations: u64) -> u64 {
        let x = vdupq_n_f32(0.999);
        let y = vdupq_n_f32(std::hint::black_box(1e-3));
        let mut acc = [vdupq_n_f32(0.0); 12];
        for _ in 0..iterations {
            for a in acc.iter_mut() {
                *a = vfmaq_f32(*a, x, y);
            }
        }
        let mut sink = [0f32; 4];
        for a in acc {
            vst1q_f32(sink.as_mut_ptr(), a);
            std::hint::black_box(sink);
        }
        iterations * 12 * 4
    }
}

#[cfg(not(target_arch = "aarch64"))]
mod imp {
    use super::Epilogue;

    pub(super) fn supported() -> bool {
        false
    }

    pub(super) fn tile(_: &[i8], _: usize, _: usize, _: &[i8], _: usize, _: &Epilogue) {
        unreachable!("the NEON kernel is only chosen on aarch64 processors that have it")
    }

    pub(super) fn ceiling_loop(_: u64) -> u64 {
        0
    }

    pub(super) fn fma_ceiling_loop(_: u64) -> u64 {
        0
    }
}
