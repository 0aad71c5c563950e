//! What one encoder pass gives every head: each token's last hidden state (and those of
//! the layers tapped for a post's features) and the part of the text it stands for, and
//! the pooled embeddings and features made from them.
//!
//! A post costs one pass. The redaction tagger reads the token states of the raw text;
//! the risk heads read a pooled embedding that can leave out the tokens of redacted
//! spans ([`EncodedText::pooled_without`]), so they never see an identifier and the post
//! is not run a second time.

/// One text after the encoder's pass.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedText {
    /// Token ids as run: the `query: ` prefix and the special tokens included.
    pub ids: Vec<u32>,
    /// For each token, the range of the text (in code points, end exclusive) it stands
    /// for; `None` for the special tokens and the prefix, which stand for nothing in it.
    pub spans: Vec<Option<(usize, usize)>>,
    /// Last-layer hidden states, token after token, `dim` values each.
    pub states: Vec<f32>,
    /// The states of the layers the encoder taps for a post's features, laid out like
    /// `states`, one vector per tapped layer (highest first; none on the reference
    /// network).
    pub tapped: Vec<Vec<f32>>,
    /// Width of a state.
    pub dim: usize,
}

impl EncodedText {
    /// How many tokens were run.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no token was run (never the case for a real pass: the special tokens are).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The hidden state of token `i`.
    pub fn state(&self, i: usize) -> &[f32] {
        &self.states[i * self.dim..(i + 1) * self.dim]
    }

    /// Mean of the states of the tokens `keep` accepts, scaled to unit length. With every
    /// token kept it is the embedding [`crate::Encoder::embed`] gives the same text.
    pub fn pooled(&self, mut keep: impl FnMut(usize) -> bool) -> Vec<f32> {
        mean_normalised(
            (0..self.len()).filter(|&i| keep(i)).map(|i| self.state(i)),
            self.dim,
        )
    }

    /// The pooled embedding without the tokens that touch any of `ranges` (code points of
    /// the text, end exclusive): what is left once redacted spans are taken out.
    pub fn pooled_without(&self, ranges: &[(usize, usize)]) -> Vec<f32> {
        self.pooled(|i| self.outside(i, ranges))
    }

    /// The post's features ([`crate::Encoder::features`]: the embedding, then each tapped
    /// layer's mean) without the tokens that touch any of `ranges`.
    pub fn features_without(&self, ranges: &[(usize, usize)]) -> Vec<f32> {
        let kept: Vec<usize> = (0..self.len())
            .filter(|&i| self.outside(i, ranges))
            .collect();
        let mut v = mean_normalised(kept.iter().map(|&i| self.state(i)), self.dim);
        for layer in &self.tapped {
            let row = |i: usize| &layer[i * self.dim..(i + 1) * self.dim];
            v.extend(mean_normalised(kept.iter().map(|&i| row(i)), self.dim));
        }
        v
    }

    /// Whether token `i` touches none of `ranges` (special tokens never do).
    fn outside(&self, i: usize, ranges: &[(usize, usize)]) -> bool {
        match self.spans[i] {
            None => true,
            Some((s, e)) => !ranges.iter().any(|&(rs, re)| s < re && rs < e),
        }
    }
}

/// Mean of `rows` (each `dim` long), scaled to unit length; zeros when there is none.
pub(crate) fn mean_normalised<'a>(rows: impl Iterator<Item = &'a [f32]>, dim: usize) -> Vec<f32> {
    let mut sum = vec![0f32; dim];
    let mut count = 0usize;
    for row in rows {
        for (s, v) in sum.iter_mut().zip(row) {
            *s += v;
        }
        count += 1;
    }
    let n = count.max(1) as f32;
    sum.iter_mut().for_each(|s| *s /= n);
    let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    sum.iter_mut().for_each(|s| *s /= norm);
    sum
}

/// One pass over a batch: the texts in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedBatch {
    /// One entry per input text, in input order.
    pub texts: Vec<EncodedText>,
}
