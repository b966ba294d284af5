//! The key of each epoch, evolved one way from the initial key, and the seal MAC
//! (FORMAT.md §16.2).

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::format::hash::Hash;

/// The domain of the one-way function that evolves an epoch's key into the next one's.
const EVOLVE_DOMAIN: &[u8] = b"auditring-seal-evolve-v1";

/// Epochs are numbered below this (2^28): deriving an epoch's key takes as many SHA-256
/// computations as its number, so a verifier given a forged log claiming a huge epoch must not
/// be made to hash for ever (at a seal a second, 2^28 epochs last eight and a half years).
pub const MAX_EPOCHS: u64 = 1 << 28;

/// The domain of the seal MAC's input.
const MAC_DOMAIN: &[u8] = b"auditring-seal-v1";

/// The key of one epoch.
pub(crate) struct EpochKey {
    pub(crate) epoch: u64,
    /// Wiped when it evolves and when dropped.
    pub(crate) key: Zeroizing<[u8; 32]>,
}

impl EpochKey {
    /// Moves to the next epoch: `key = SHA-256(EVOLVE_DOMAIN ‖ key)`; the old key is
    /// overwritten in place.
    pub(crate) fn evolve(&mut self) {
        let mut h = Sha256::new();
        h.update(EVOLVE_DOMAIN);
        h.update(&self.key[..]);
        let next: [u8; 32] = h.finalize().into();
        self.key.copy_from_slice(&next);
        self.epoch += 1;
    }

    /// The seal MAC of a seal record at `seq` of log `log_id`, whose chain hash before it is
    /// `prev`: `HMAC-SHA-256(key, MAC_DOMAIN ‖ log_id ‖ epoch ‖ seq ‖ prev)`, the integers
    /// big-endian u64.
    pub(crate) fn mac(&self, log_id: &[u8; 16], seq: u64, prev: &Hash) -> Hash {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key[..]).expect("HMAC takes any key");
        mac.update(MAC_DOMAIN);
        mac.update(log_id);
        mac.update(&self.epoch.to_be_bytes());
        mac.update(&seq.to_be_bytes());
        mac.update(prev.as_bytes());
        Hash(mac.finalize().into_bytes().into())
    }

    /// A copy (for the state file written after a seal).
    pub(crate) fn duplicate(&self) -> EpochKey {
        EpochKey {
            epoch: self.epoch,
            key: self.key.clone(),
        }
    }
}

/// 64 lowercase hex digits to a key.
pub(crate) fn parse_key(hex: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("a key must be 64 lowercase hex digits".into());
    }
    let mut key = Zeroizing::new([0u8; 32]);
    for (i, out) in key.iter_mut().enumerate() {
        *out = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    Ok(key)
}

/// A key in 64 lowercase hex digits.
pub(crate) fn hex_of(key: &[u8; 32]) -> Zeroizing<String> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = Zeroizing::new(String::with_capacity(64));
    for b in key {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::key::SealKey;

    #[test]
    fn the_mac_binds_every_input() {
        let key = SealKey::from_bytes([1; 32]);
        let (k0, k1) = (key.epoch(0), key.epoch(1));
        let base = k0.mac(&[2; 16], 10, &Hash([3; 32]));
        assert_ne!(base, k1.mac(&[2; 16], 10, &Hash([3; 32])));
        assert_ne!(base, k0.mac(&[9; 16], 10, &Hash([3; 32])));
        assert_ne!(base, k0.mac(&[2; 16], 11, &Hash([3; 32])));
        assert_ne!(base, k0.mac(&[2; 16], 10, &Hash([4; 32])));
        // HMAC-SHA-256 by its definition (RFC 2104), for an independent check of the crate.
        let mut input = b"auditring-seal-v1".to_vec();
        input.extend([2; 16]);
        input.extend(0u64.to_be_bytes());
        input.extend(10u64.to_be_bytes());
        input.extend([3; 32]);
        let pad = |b: u8| -> Vec<u8> { (0..64).map(|i| if i < 32 { 1 ^ b } else { b }).collect() };
        let inner = Sha256::digest([pad(0x36), input].concat());
        let outer = Sha256::digest([pad(0x5c), inner.to_vec()].concat());
        assert_eq!(base.0, <[u8; 32]>::from(outer));
    }
}
