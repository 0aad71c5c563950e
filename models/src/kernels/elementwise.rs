//! The encoder's per-element work (activation quantisation, GELU, softmax), written as
//! plain arithmetic the compiler vectorises, and compiled a second and third time with
//! AVX2 and AVX-512 enabled; the widest version the processor has (capped like the
//! product kernels by `VIGIE_KERNELS`) runs. Baseline x86-64 code has 128-bit vectors
//! and no FMA, and `f32::exp`/`f32::round` are library calls per value: measured on the
//! sample posts, this work took a quarter of an int8 pass before.

use std::sync::OnceLock;

use super::Kernel;

/// The vector level per-element code runs at: the best available kernel.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) fn level() -> Kernel {
    static LEVEL: OnceLock<Kernel> = OnceLock::new();
    *LEVEL.get_or_init(Kernel::detect)
}

/// Defines `pub fn $name` that runs `$body` compiled for the widest vector level allowed.
/// The body sees a const `FMA`, true in the variants built with fused multiply-add, for
/// [`madd`].
macro_rules! multiversion {
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(unused)]
            fn generic<const FMA: bool>($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
                unsafe fn wide($($arg: $ty),*) $(-> $ret)? { generic::<true>($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn narrow($($arg: $ty),*) $(-> $ret)? { generic::<true>($($arg),*) }
                match level() {
                    // SAFETY: `level` only returns kernels the processor supports, and each
                    // kernel's features include the ones enabled here.
                    Kernel::Avx512Vnni | Kernel::Amx => return unsafe { wide($($arg),*) },
                    Kernel::Avx2 | Kernel::AvxVnni => return unsafe { narrow($($arg),*) },
                    Kernel::Portable | Kernel::Neon => {}
                }
            }
            generic::<false>($($arg),*)
        }
    };
}

/// `a·b + c`: one fused instruction in the variants that have FMA, plain arithmetic in the
/// baseline one (where `mul_add` would be a library call per value).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

multiversion! {
    /// `out ← out + a·x` (over the shorter length), each element on its own: the order
    /// of the sums an element gets is the caller's.
    pub fn axpy_f32(a: f32, x: &[f32], out: &mut [f32]) {
        for (o, v) in out.iter_mut().zip(x) {
            *o = madd::<FMA>(a, *v, *o);
        }
    }
}

multiversion! {
    /// `a·b` (over the shorter length) summed in 16 independent lanes, so that it
    /// vectorises: a running sum has one order the compiler may not change. The heads'
    /// dot products (the token tagger's hidden layer reads every token) took an eighth
    /// of a screening pass as scalar loops.
    pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut lanes = [0.0f32; 16];
        let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
        let (ta, tb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..16 {
                lanes[i] = madd::<FMA>(x[i], y[i], lanes[i]);
            }
        }
        let mut sum = 0.0f32;
        for (x, y) in ta.iter().zip(tb) {
            sum = madd::<FMA>(*x, *y, sum);
        }
        lanes.iter().sum::<f32>() + sum
    }
}

/// Adding 1.5·2²³ rounds to the nearest integer (ties to even) in plain float arithmetic.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `round(v)` for |v| < 2²², read from the bits of `v + 1.5·2²³` (whose low mantissa bits
/// are then the integer): integer operations only, which vectorise where float-to-int
/// casts to narrow types do not.
#[inline(always)]
fn round_to_i32(v: f32) -> i32 {
    (v + ROUND_MAGIC).to_bits() as i32 - 0x4B40_0000
}

/// The largest magnitude of a row (infinite when the row holds a NaN or an infinity), as
/// independent lanes so that it vectorises.
#[inline(always)]
fn max_abs(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    // x·0 is 0 for finite x and NaN otherwise; comparisons alone would skip NaNs.
    let mut probe = [0.0f32; 16];
    let chunks = x.chunks_exact(16);
    let tail = chunks.remainder();
    for chunk in chunks {
        for ((m, p), &v) in lanes.iter_mut().zip(probe.iter_mut()).zip(chunk) {
            let a = v.abs();
            *m = if a > *m { a } else { *m };
            *p += v * 0.0;
        }
    }
    let mut max = tree_max16(lanes);
    for &v in tail {
        max = max.max(v.abs());
    }
    // A NaN or an infinity anywhere made a probe lane NaN (or left an infinite max).
    if !max.is_finite() || tree_sum16(probe) != 0.0 || tail.iter().any(|v| !v.is_finite()) {
        return f32::INFINITY;
    }
    max
}

/// The inverse scale a row is quantised with (127 / max |x|), and the scale that maps
/// the integers back; a zero or non-finite row gets zeros (and a NaN scale when it held a
/// NaN or an infinity, so that the fault shows in the output rather than hiding).
#[inline(always)]
fn row_scales(x: &[f32]) -> (f32, f32) {
    let max = max_abs(x);
    if !max.is_finite() {
        (0.0, f32::NAN)
    } else if max == 0.0 {
        (0.0, 0.0)
    } else {
        (127.0 / max, max / 127.0)
    }
}

multiversion! {
    /// Quantises a row to int8 (`[-127, 127]`) in `out`; returns the scale.
    pub fn quantize_row_i8(x: &[f32], out: &mut [i8]) -> f32 {
        let (inv, scale) = row_scales(x);
        for (q, &v) in out.iter_mut().zip(x) {
            *q = round_to_i32(v * inv) as i8;
        }
        scale
    }
}

multiversion! {
    /// Quantises a row to int8 values held in 16 bits; returns the scale.
    pub fn quantize_row_i16(x: &[f32], out: &mut [i16]) -> f32 {
        let (inv, scale) = row_scales(x);
        for (q, &v) in out.iter_mut().zip(x) {
            *q = round_to_i32(v * inv) as i16;
        }
        scale
    }
}

multiversion! {
    /// Quantises a row to int8 stored as `q + 128` (unsigned bytes); returns the scale.
    pub fn quantize_row_shifted_u8(x: &[f32], out: &mut [u8]) -> f32 {
        let (inv, scale) = row_scales(x);
        for (q, &v) in out.iter_mut().zip(x) {
            *q = (round_to_i32(v * inv) + 128) as u8;
        }
        scale
    }
}

/// erf(x) as x·P(x²)/Q(x²) on [-4, 4] (beyond, erf is ±1 to f32 precision); the
/// coefficients are those of Eigen's and XLA's `erf` for f32. Each step is one [`madd`]:
/// a fused instruction in the variants with FMA, a multiply and an add in the baseline one.
#[inline(always)]
fn erf_with<const FMA: bool>(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    // Written out, not through a closure: a closure is compiled without the variant's
    // target features, where a fused multiply-add is a library call.
    let p = madd::<FMA>(-2.726_142_3e-10f32, x2, 2.770_681_4e-8);
    let p = madd::<FMA>(p, x2, -2.101_024e-6);
    let p = madd::<FMA>(p, x2, -5.692_506_4e-5);
    let p = madd::<FMA>(p, x2, -7.349_906_3e-4);
    let p = madd::<FMA>(p, x2, -2.954_600_5e-3);
    let p = madd::<FMA>(p, x2, -1.609_603_3e-2);
    let q = madd::<FMA>(-1.456_607_2e-5f32, x2, -2.133_740_6e-4);
    let q = madd::<FMA>(q, x2, -1.682_827e-3);
    let q = madd::<FMA>(q, x2, -7.373_329e-3);
    let q = madd::<FMA>(q, x2, -1.426_474e-2);
    // x·p/q with the division as a reciprocal: every coefficient of q is negative, so -q
    // is at least 0.0142 and its reciprocal starts from the exponent-flipping guess
    // (12 % off) and three Newton steps (4·10⁻⁸ off). A vector division takes one port
    // for many cycles; with it GELU was a twentieth of an int8 pass.
    let nq = -q;
    let mut r = f32::from_bits(0x7EF3_11C7u32.wrapping_sub(nq.to_bits()));
    for _ in 0..3 {
        r *= madd::<FMA>(-nq, r, 2.0);
    }
    -(x * p) * r
}

multiversion! {
    /// Layer normalisation in place over rows of `weight.len()` values, after adding the
    /// residual rows when given: `x = (x + r − mean) / √(var + eps) · weight + bias`.
    /// One pass per row while it is in cache, statistics summed in 16 lanes (candle's
    /// layer norm and broadcast add took a twelfth of an int8 pass as two scalar passes
    /// over fresh buffers). The variance is taken around the mean, not as E[x²] − mean².
    pub fn layer_norm_rows(
        x: &mut [f32],
        residual: Option<&[f32]>,
        weight: &[f32],
        bias: &[f32],
        eps: f32
    ) {
        let n = weight.len();
        if n == 0 {
            return;
        }
        for (i, row) in x.chunks_exact_mut(n).enumerate() {
            // A residual shorter than `x` is a caller's bug: slicing panics rather than
            // skipping the add.
            if let Some(r) = residual.map(|r| &r[i * n..(i + 1) * n]) {
                for (v, &r) in row.iter_mut().zip(r) {
                    *v += r;
                }
            }
            let mut lanes = [0.0f32; 16];
            let chunks = row.chunks_exact(16);
            let tail: f32 = chunks.remainder().iter().sum();
            for c in chunks {
                for l in 0..16 {
                    lanes[l] += c[l];
                }
            }
            let mean = (tree_sum16(lanes) + tail) / n as f32;
            // Inline, not a closure: a closure is compiled without the variant's target
            // features, and its fused multiply-adds became library calls.
            let mut lanes = [0.0f32; 16];
            let chunks = row.chunks_exact(16);
            let tail: f32 = chunks.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
            for c in chunks {
                for l in 0..16 {
                    let v = c[l] - mean;
                    lanes[l] = madd::<FMA>(v, v, lanes[l]);
                }
            }
            let var = (tree_sum16(lanes) + tail) / n as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, &w), &b) in row.iter_mut().zip(weight).zip(bias) {
                *v = madd::<FMA>((*v - mean) * inv, w, b);
            }
        }
    }
}

multiversion! {
    /// GELU in place, the exact erf form BERT was trained with.
    pub fn gelu_in_place(values: &mut [f32]) {
        for v in values {
            *v = 0.5 * *v * (1.0 + erf_with::<FMA>(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

/// eˣ for x ≤ 0 (what a softmax takes after subtracting the maximum): 2ⁿ·e^r with
/// |r| ≤ ln2/2 and a degree-6 polynomial, relative error below 3·10⁻⁷; underflows to 0
/// below -87.
#[inline(always)]
pub fn fast_exp_nonpositive(x: f32) -> f32 {
    fast_exp_with::<false>(x)
}

/// [`fast_exp_nonpositive`] with the polynomial's steps as [`madd`]: fused multiply-adds
/// in the variants that have them (the softmax's exponentials were a fifth of attention,
/// each step a multiply and an add).
#[inline(always)]
fn fast_exp_with<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let tiny = x < -87.0;
    // Not `max`: a NaN score must stay NaN and show, not become a tiny probability.
    let x = if tiny { -87.0 } else { x };
    // The exponent as an integer straight from the rounding bits: a float-to-int cast
    // here would be done one lane at a time (it saturates).
    let ni = round_to_i32(x * LOG2E);
    let n = ni as f32;
    let r = madd::<FMA>(-n, LN2_HI, x);
    let r = madd::<FMA>(-n, LN2_LO, r);
    let p = 1.0 / 720.0f32;
    let p = madd::<FMA>(p, r, 1.0 / 120.0);
    let p = madd::<FMA>(p, r, 1.0 / 24.0);
    let p = madd::<FMA>(p, r, 1.0 / 6.0);
    let p = madd::<FMA>(p, r, 0.5);
    let p = madd::<FMA>(p, r, 1.0);
    let p = madd::<FMA>(p, r, 1.0);
    let two_n = f32::from_bits(((ni + 127) as u32) << 23);
    if tiny {
        0.0
    } else {
        p * two_n
    }
}

multiversion! {
    /// Softmax of `row[..len]` in place, `row[len..]` set to 0 (padding keys).
    pub fn softmax_prefix(row: &mut [f32], len: usize) {
        let (real, padding) = row.split_at_mut(len.min(row.len()));
        let max = real.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in real.iter_mut() {
            *v = fast_exp_with::<FMA>(*v - max);
            sum += *v;
        }
        let inv = 1.0 / sum;
        real.iter_mut().for_each(|v| *v *= inv);
        padding.fill(0.0);
    }
}

/// The largest of 16 lanes, folded pairwise (8, 4, 2, 1 apart): four dependent steps,
/// where a running fold is fifteen. A softmax row of a short post is two vectors long, so
/// its two horizontal reductions, one after the other, were most of its time.
#[inline(always)]
fn tree_max16(mut lanes: [f32; 16]) -> f32 {
    for half in [8, 4, 2, 1] {
        for i in 0..half {
            lanes[i] = if lanes[i] > lanes[i + half] {
                lanes[i]
            } else {
                lanes[i + half]
            };
        }
    }
    lanes[0]
}

/// The sum of 16 lanes, folded pairwise like [`tree_max16`].
#[inline(always)]
fn tree_sum16(mut lanes: [f32; 16]) -> f32 {
    for half in [8, 4, 2, 1] {
        for i in 0..half {
            lanes[i] += lanes[i + half];
        }
    }
    lanes[0]
}

/// Queries handled together by the register-blocked attention path.
pub(super) const QUERY_BLOCK: usize = 4;

/// Scores (keys) or context values summed together per query: two 16-lane vectors, so
/// each broadcast query or probability feeds two multiply-adds.
const ATTEND_LANES: usize = 32;

/// Scratch values [`attend_head`] needs for a head of size `d` over `len` tokens.
pub fn attend_scratch_len(d: usize, len: usize) -> usize {
    let wide = len.div_ceil(ATTEND_LANES) * ATTEND_LANES;
    (d + QUERY_BLOCK) * wide
}

multiversion! {
    /// One attention head over one packed sequence: `qkv` rows `start..start + len` hold
    /// `[q | k | v]` (`hidden` each, the query pre-scaled); writes the head's context,
    /// `len` rows of `d = ctx.len() / len` values, to `ctx`. `scratch` holds
    /// [`attend_scratch_len`] values; nothing in it or in `ctx` needs clearing.
    ///
    /// Scores and context sums are kept in registers, four queries × 32 lanes at a time:
    /// summing into memory made every step wait on the store before it. Queries and
    /// probabilities are read where they lie, one broadcast each feeding two
    /// multiply-adds; only the keys are transposed (measured on the sample posts: the
    /// transposed copies of queries and probabilities, and one multiply-add per
    /// broadcast, held attention to a fifth of an int8 pass).
    pub fn attend_head(
        qkv: &[f32],
        start: usize,
        head: usize,
        hidden: usize,
        scratch: &mut [f32],
        len: usize,
        ctx: &mut [f32]
    ) {
        const L: usize = ATTEND_LANES;
        if len == 0 {
            return;
        }
        let d = ctx.len() / len;
        let wide = len.div_ceil(L) * L;
        let (keys_t, rest) = scratch.split_at_mut(d * wide);
        let probs = &mut rest[..QUERY_BLOCK * wide];
        let row_len = 3 * hidden;
        let at = |t: usize, part: usize| (start + t) * row_len + part * hidden + head * d;
        // Keys transposed ([d][wide], zero past `len`), so 32 keys' scores are two vector
        // updates per query element.
        super::transpose::keys_to_columns(&qkv[at(0, 1)..], row_len, d, len, keys_t, wide);
        let whole = d / L * L;
        for i0 in (0..len).step_by(QUERY_BLOCK) {
            let rows = QUERY_BLOCK.min(len - i0);
            // Rows past the end repeat the last query: the same steps, results unused, and
            // no branch inside the loops.
            let query = |r: usize| &qkv[at(i0 + r.min(rows - 1), 0)..][..d];
            let (q0, q1, q2, q3) = (query(0), query(1), query(2), query(3));
            for c in (0..wide).step_by(L) {
                let mut acc = [[0.0f32; L]; QUERY_BLOCK];
                for ((((krow, &a), &b), &e), &f) in
                    keys_t.chunks_exact(wide).zip(q0).zip(q1).zip(q2).zip(q3)
                {
                    let Ok(k) = <&[f32; L]>::try_from(&krow[c..c + L]) else {
                        continue;
                    };
                    for (acc, q) in acc.iter_mut().zip([a, b, e, f]) {
                        for l in 0..L {
                            acc[l] = madd::<FMA>(q, k[l], acc[l]);
                        }
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    probs[r * wide + c..r * wide + c + L].copy_from_slice(acc);
                }
            }
            // Softmax numerators; each row's 1/Σ scales its context at the end.
            let mut inv = [0.0f32; QUERY_BLOCK];
            for (r, inv) in inv.iter_mut().enumerate().take(rows) {
                let row = &mut probs[r * wide..(r + 1) * wide];
                row[len..].fill(f32::NEG_INFINITY);
                let mut lanes = [f32::NEG_INFINITY; 16];
                for s in row.chunks_exact(16) {
                    for l in 0..16 {
                        lanes[l] = if s[l] > lanes[l] { s[l] } else { lanes[l] };
                    }
                }
                let max = tree_max16(lanes);
                let mut sums = [0.0f32; 16];
                for s in row.chunks_exact_mut(16) {
                    for l in 0..16 {
                        s[l] = fast_exp_with::<FMA>(s[l] - max);
                        sums[l] += s[l];
                    }
                }
                *inv = 1.0 / tree_sum16(sums);
            }
            let prob = |r: usize| &probs[r.min(rows - 1) * wide..][..len];
            let (p0, p1, p2, p3) = (prob(0), prob(1), prob(2), prob(3));
            // Context: 32 elements of d at a time, the four queries' sums in registers.
            for c in (0..whole).step_by(L) {
                let mut acc = [[0.0f32; L]; QUERY_BLOCK];
                for (j, (((&a, &b), &e), &f)) in p0.iter().zip(p1).zip(p2).zip(p3).enumerate() {
                    let Ok(v) = <&[f32; L]>::try_from(&qkv[at(j, 2) + c..at(j, 2) + c + L]) else {
                        continue;
                    };
                    for (acc, p) in acc.iter_mut().zip([a, b, e, f]) {
                        for l in 0..L {
                            acc[l] = madd::<FMA>(p, v[l], acc[l]);
                        }
                    }
                }
                for (r, acc) in acc.iter().enumerate().take(rows) {
                    let out = &mut ctx[(i0 + r) * d + c..(i0 + r) * d + c + L];
                    for (o, &s) in out.iter_mut().zip(acc) {
                        *o = s * inv[r];
                    }
                }
            }
            for r in (0..rows).filter(|_| whole < d) {
                let out = &mut ctx[(i0 + r) * d + whole..(i0 + r + 1) * d];
                out.fill(0.0);
                for j in 0..len {
                    let p = probs[r * wide + j] * inv[r];
                    for (o, &v) in out.iter_mut().zip(&qkv[at(j, 2) + whole..at(j, 2) + d]) {
                        *o += p * v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_plain_sum_on_odd_lengths() {
        for n in [0usize, 1, 15, 16, 17, 100, 384] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.1).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.3).collect();
            let plain: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            let got = dot_f32(&a, &b);
            assert!(
                (f64::from(got) - plain).abs() < 1e-4,
                "n={n}: {got} vs {plain}"
            );
        }
        assert_eq!(
            dot_f32(&[1.0, 2.0, 3.0], &[4.0, 5.0]),
            14.0,
            "the shorter length"
        );
    }

    fn erf_reference(x: f64) -> f64 {
        // Abramowitz & Stegun 7.1.28 is too coarse to judge 1e-6; integrate instead.
        let n = 20_000;
        let h = x / n as f64;
        let f = |t: f64| (-t * t).exp();
        let mut s = f(0.0) + f(x);
        for i in 1..n {
            s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_within_a_millionth_with_and_without_fma() {
        for i in -6000..=6000 {
            let x = i as f64 / 1000.0;
            let got = erf_with::<false>(x as f32) as f64;
            let fused = erf_with::<true>(x as f32) as f64;
            let want = erf_reference(x);
            assert!(
                (fused - want).abs() < 1e-6,
                "fused erf({x}) = {fused}, expected {want}"
            );
            assert!(
                (got - want).abs() < 1e-6,
                "erf({x}) = {got}, expected {want}"
            );
        }
        assert!(
            (erf_with::<false>(f32::INFINITY) - 1.0).abs() < 1e-6
                && (erf_with::<false>(f32::NEG_INFINITY) + 1.0).abs() < 1e-6
        );
    }

    #[test]
    fn fast_exp_is_within_a_few_ulps() {
        let mut worst = 0.0f64;
        for i in 0..=90_000 {
            let x = -(i as f32) / 1000.0;
            let got = fast_exp_nonpositive(x) as f64;
            let want = (x as f64).exp();
            if want > 1e-37 {
                worst = worst.max((got - want).abs() / want);
            }
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(fast_exp_nonpositive(-100.0), 0.0);
        assert_eq!(fast_exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert_eq!(fast_exp_nonpositive(0.0), 1.0);
    }

    #[test]
    fn layer_norm_rows_matches_the_plain_formula_with_and_without_residual() {
        let mut rng = crate::rng::XorShift::new(11);
        for n in [1usize, 7, 16, 33, 384] {
            let rows = 3;
            let x = rng.vec(rows * n, 4.0);
            let r = rng.vec(rows * n, 2.0);
            let w = rng.vec(n, 1.5);
            let b = rng.vec(n, 0.5);
            for residual in [None, Some(&r[..])] {
                let mut got = x.clone();
                layer_norm_rows(&mut got, residual, &w, &b, 1e-12);
                for i in 0..rows {
                    let row: Vec<f64> = (0..n)
                        .map(|j| {
                            x[i * n + j] as f64 + residual.map_or(0.0, |r| r[i * n + j] as f64)
                        })
                        .collect();
                    let mean = row.iter().sum::<f64>() / n as f64;
                    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
                    for j in 0..n {
                        let want =
                            (row[j] - mean) / (var + 1e-12).sqrt() * w[j] as f64 + b[j] as f64;
                        let g = got[i * n + j] as f64;
                        assert!(
                            (g - want).abs() < 1e-4 * (1.0 + want.abs()),
                            "n={n} residual={} row {i} col {j}: {g} vs {want}",
                            residual.is_some()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn softmax_prefix_sums_to_one_and_zeroes_padding() {
        let mut row = [1.0, 2.0, 3.0, 9.0, 9.0];
        softmax_prefix(&mut row, 3);
        let want: Vec<f32> = {
            let e: Vec<f32> = [1.0f32, 2.0, 3.0].iter().map(|v| (v - 3.0).exp()).collect();
            let s: f32 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        };
        for (g, w) in row[..3].iter().zip(&want) {
            assert!((g - w).abs() < 1e-6);
        }
        assert_eq!(&row[3..], &[0.0, 0.0]);
    }

    #[test]
    fn the_three_quantised_forms_agree() {
        let x: Vec<f32> = (0..37)
            .map(|i| ((i * 7919) % 101) as f32 / 13.0 - 3.5)
            .collect();
        let (mut a, mut b, mut c) = (vec![0i8; 37], vec![0i16; 37], vec![0u8; 37]);
        let s1 = quantize_row_i8(&x, &mut a);
        let s2 = quantize_row_i16(&x, &mut b);
        let s3 = quantize_row_shifted_u8(&x, &mut c);
        assert_eq!((s1, s1), (s2, s3));
        for i in 0..37 {
            assert_eq!(a[i] as i16, b[i]);
            assert_eq!(a[i] as i16 + 128, c[i] as i16);
            assert!(a[i] != -128);
            assert!(((a[i] as f32) * s1 - x[i]).abs() <= s1 * 0.5 + 1e-6);
        }
        let mut z = [9i8; 3];
        assert_eq!(quantize_row_i8(&[0.0; 3], &mut z), 0.0);
        assert_eq!(z, [0; 3]);
        assert!(quantize_row_i8(&[f32::NAN, 1.0], &mut z[..2]).is_nan());
        // A fault inside the vector part of a row, or in its tail, shows the same way.
        let mut long = [0i8; 40];
        for (at, bad) in [
            (5, f32::NAN),
            (20, f32::INFINITY),
            (37, f32::NEG_INFINITY),
            (39, f32::NAN),
        ] {
            let mut row = [0.5f32; 40];
            row[at] = bad;
            assert!(quantize_row_i8(&row, &mut long).is_nan(), "{bad} at {at}");
        }
    }
}
