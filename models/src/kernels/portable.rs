//! The kernel for any processor: row-major int8 weights, integer dot products written so
//! the compiler vectorises them (widening multiply-adds) for whatever target it builds.

use super::Epilogue;

/// Output columns per panel: a tile's weights (16 rows of `k` bytes) stay in L1.
pub(super) const PANEL: usize = 16;

/// Sums of `rows` activation rows (`a`, `stride` apart) against the panel's weight rows
/// (`w`, `k` apart), then stores them through `ctx`.
pub(super) fn tile(a: &[i8], stride: usize, rows: usize, w: &[i8], k: usize, ctx: &Epilogue) {
    let mut sums = [0i32; PANEL];
    for r in 0..rows {
        let x = &a[r * stride..r * stride + k];
        for (c, sum) in sums.iter_mut().enumerate().take(ctx.cols) {
            *sum = dot(x, &w[c * k..(c + 1) * k]);
        }
        // SAFETY: the caller's tile lies inside the output (see `run_tile`).
        unsafe { ctx.store_row(r, &sums) };
    }
}

fn dot(a: &[i8], b: &[i8]) -> i32 {
    // Eight independent partial sums let the vectoriser keep several lanes busy.
    let mut acc = [0i32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] as i32 * y[i] as i32;
        }
    }
    let tail: i32 = ra.iter().zip(rb).map(|(&x, &y)| x as i32 * y as i32).sum();
    acc.iter().sum::<i32>() + tail
}
