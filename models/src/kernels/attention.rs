//! Self-attention over packed sequences: the tokens of every post one after another, no
//! padding. Each (sequence, head) pair is one parallel task that reads its queries, keys
//! and values straight from the fused QKV rows and writes its slice of the context rows,
//! so nothing is transposed or copied, and no work is spent on padding keys or rows.
//! Attention is about 1 % of the encoder's multiply-adds on posts; done through general
//! batched products with transposes it took a fifth of the time.

use rayon::prelude::*;

use super::elementwise::{attend_head, attend_scratch_len};

/// Scaled dot-product attention. `qkv` holds one row per token, `[q | k | v]` of `hidden`
/// values each, with the query already scaled by 1/√(head size); `offsets` are where each
/// sequence starts, plus the total (so `offsets.len()` is sequences + 1). Writes the
/// context, one row of `hidden` values per token, to `out`.
///
/// # Panics
/// If the sizes disagree (`hidden` not a multiple of `heads`, `qkv` or `out` not one row
/// per token, offsets not increasing): shapes come from the model and the batch builder.
pub fn attention(qkv: &[f32], offsets: &[usize], heads: usize, hidden: usize, out: &mut [f32]) {
    check_shapes(qkv, offsets, heads, hidden, out.len());
    // SAFETY: `out` holds `tokens · hidden` floats (checked above).
    unsafe { attend_into(qkv, offsets, heads, hidden, OutPtr(out.as_mut_ptr())) }
}

/// [`attention`] into a new vector that is never cleared first: the tasks write every
/// row of every sequence, every head's columns, exactly once (zeroing the context took
/// about a hundredth of an int8 pass).
///
/// # Panics
/// As [`attention`].
pub fn attention_to_vec(qkv: &[f32], offsets: &[usize], heads: usize, hidden: usize) -> Vec<f32> {
    let tokens = offsets.last().copied().unwrap_or(0);
    check_shapes(qkv, offsets, heads, hidden, tokens * hidden);
    let len = tokens * hidden;
    let mut out = Vec::with_capacity(len);
    // SAFETY: the capacity is `tokens · hidden` floats, shapes checked above.
    unsafe { attend_into(qkv, offsets, heads, hidden, OutPtr(out.as_mut_ptr())) };
    // SAFETY: `attend_into` wrote all `tokens · hidden` values: the offsets start at 0 and
    // end at `tokens`, and the heads' columns tile each row.
    unsafe { out.set_len(len) };
    out
}

/// # Safety
/// `out_ptr` must point at `tokens · hidden` writable floats, and the shapes must have
/// passed [`check_shapes`].
unsafe fn attend_into(
    qkv: &[f32],
    offsets: &[usize],
    heads: usize,
    hidden: usize,
    out_ptr: OutPtr,
) {
    let sequences = offsets.len().saturating_sub(1);
    // Adjacent heads of a post go to one task in groups: a head is a few microseconds of
    // work, about what handing a task to another thread costs.
    (0..sequences * heads)
        .into_par_iter()
        .with_min_len(4)
        .for_each(|task| {
            let (s, head) = (task / heads, task % heads);
            let (start, end) = (offsets[s], offsets[s + 1]);
            // SAFETY: task (s, head) writes only rows start..end, columns of `head`: disjoint
            // from every other task, and inside `out` (checked above).
            unsafe { one_head(qkv, start, end, head, heads, hidden, out_ptr) };
        });
}

fn check_shapes(qkv: &[f32], offsets: &[usize], heads: usize, hidden: usize, out_len: usize) {
    assert!(
        heads > 0 && hidden.is_multiple_of(heads),
        "hidden size is not a multiple of heads"
    );
    let tokens = offsets.last().copied().unwrap_or(0);
    assert!(
        offsets.first().is_none_or(|&first| first == 0),
        "offsets do not start at 0"
    );
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "offsets decrease");
    assert_eq!(
        qkv.len(),
        tokens * 3 * hidden,
        "qkv is not one row per token"
    );
    assert_eq!(out_len, tokens * hidden, "output is not one row per token");
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint regions (see `attention`).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// # Safety
/// Rows `start..end`, columns `head·d..(head+1)·d` of the output behind `out` must be
/// valid and written by no other thread meanwhile.
unsafe fn one_head(
    qkv: &[f32],
    start: usize,
    end: usize,
    head: usize,
    heads: usize,
    hidden: usize,
    out: OutPtr,
) {
    let d = hidden / heads;
    let len = end - start;
    if len == 0 {
        return;
    }
    let need = attend_scratch_len(d, len);
    SCRATCH.with(|cell| {
        let (scratch, ctx) = &mut *cell.borrow_mut();
        if scratch.len() < need {
            scratch.resize(need, 0.0);
        }
        if ctx.len() < d * len {
            ctx.resize(d * len, 0.0);
        }
        let ctx = &mut ctx[..d * len];
        attend_head(qkv, start, head, hidden, &mut scratch[..need], len, ctx);
        for (i, row) in ctx.chunks_exact(d).enumerate() {
            let dst = out.0.add((start + i) * hidden + head * d);
            std::ptr::copy_nonoverlapping(row.as_ptr(), dst, d);
        }
    });
}

thread_local! {
    /// Per-thread scratch and context buffers, grown to the longest post seen: attention
    /// runs thousands of (post, head) tasks per batch, too many to allocate for each.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// The plain form: every score, the softmax and the weighted sum one at a time (f64).
#[cfg(test)]
pub fn reference_attention(
    qkv: &[f32],
    offsets: &[usize],
    heads: usize,
    hidden: usize,
) -> Vec<f32> {
    let d = hidden / heads;
    let tokens = *offsets.last().unwrap();
    let mut out = vec![0.0f32; tokens * hidden];
    for s in offsets.windows(2) {
        for h in 0..heads {
            for i in s[0]..s[1] {
                let q = &qkv[i * 3 * hidden + h * d..][..d];
                let scores: Vec<f64> = (s[0]..s[1])
                    .map(|j| {
                        let k = &qkv[j * 3 * hidden + hidden + h * d..][..d];
                        q.iter().zip(k).map(|(a, b)| *a as f64 * *b as f64).sum()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|v| (v - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for t in 0..d {
                    out[i * hidden + h * d + t] = (s[0]..s[1])
                        .zip(&e)
                        .map(|(j, p)| p / sum * qkv[j * 3 * hidden + 2 * hidden + h * d + t] as f64)
                        .sum::<f64>() as f32;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::XorShift;

    #[test]
    fn matches_the_plain_computation_on_packed_sequences() {
        let mut rng = XorShift::new(3);
        for (heads, hidden, lengths) in [
            (2, 8, vec![1, 5, 3]),
            (12, 384, vec![27, 1, 40]),
            (3, 9, vec![0, 4, 0, 2]),
            // A head of 40: one 32-value block of context and a tail; 33 and 65 keys
            // cross the 32-key blocks of scores.
            (4, 160, vec![33, 7, 65]),
            (2, 128, vec![64, 1, 31]),
        ] {
            let mut offsets = vec![0];
            for l in &lengths {
                offsets.push(offsets.last().unwrap() + l);
            }
            let tokens = *offsets.last().unwrap();
            let qkv = rng.vec(tokens * 3 * hidden, 2.0);
            let mut got = vec![f32::NAN; tokens * hidden];
            attention(&qkv, &offsets, heads, hidden, &mut got);
            let want = reference_attention(&qkv, &offsets, heads, hidden);
            let fresh = attention_to_vec(&qkv, &offsets, heads, hidden);
            assert!(
                fresh
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{lengths:?}: attention_to_vec differs"
            );
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() < 1e-5, "{lengths:?} at {i}: {g} vs {w}");
            }
        }
    }
}
