//! A local daemon that holds a ring for many processes, and its client.
//!
//! * [`protocol`]: the frames and replies on the socket (`docs/PROTOCOL.md`);
//! * [`server`]: the daemon, `auditring serve`'s engine;
//! * [`client`]: a process's connection to it, `auditring append --socket`'s engine.

pub(crate) mod client;
pub(crate) mod protocol;
pub(crate) mod server;
