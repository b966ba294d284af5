//! Forward-secure sealing (`docs/FORMAT.md` §16): keys that evolve through a one-way function,
//! and the HMAC that seals everything before a seal record.
//!
//! An auditor creates a [`SealKey`] and keeps it offline; the ring is given a state file that
//! starts with the same key. Each seal the ring writes is an `auditring.sealed` record holding
//! `HMAC-SHA-256(key_e, input)` over the chain hash before it, for its epoch `e`; right after,
//! the key evolves to `key_{e+1} = SHA-256("auditring-seal-evolve-v1" ‖ key_e)` and the state
//! file is replaced, so that whoever takes the host later holds only keys that cannot seal the
//! epochs already sealed. The verifier derives every epoch's key from the initial one.

pub(crate) mod epoch;
pub(crate) mod file;
pub(crate) mod key;
pub(crate) mod state;
