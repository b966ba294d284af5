//! `SplitMix64`: the seeded randomness of the crash, fault and kill tests (workloads, page fates,
//! kill points), so that every run does the same thing.

/// A `SplitMix64` generator; the state is the seed.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    // Named as the generator's own step, not an iterator's: the stream never ends.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
