//! xorshift64*: a fixed stream of pseudo-random numbers from a seed, so that the tests that draw
//! mutants or corpus edits from it do the same thing on every run.

/// The generator; the seed is its state.
pub struct Rng(pub u64);

impl Rng {
    /// The next number of the stream.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A byte.
    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}
