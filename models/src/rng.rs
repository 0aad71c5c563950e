//! A tiny deterministic generator (xorshift64): training and test models must come out
//! the same on every run and machine, and need nothing better than this.

/// xorshift64 state.
pub struct XorShift(u64);

impl XorShift {
    /// xorshift needs a non-zero state: the lowest bit is set, so seeds 2k and 2k+1
    /// give the same stream.
    pub fn new(seed: u64) -> Self {
        XorShift(seed | 1)
    }

    /// The next 64 bits of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [-scale, scale] (f32 rounding can reach the upper end).
    pub fn symmetric(&mut self, scale: f32) -> f32 {
        ((self.next_u64() >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0) * scale
    }

    /// `len` values uniform in [-scale, scale].
    pub fn vec(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|_| self.symmetric(scale)).collect()
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
