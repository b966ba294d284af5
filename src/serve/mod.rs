//! A local daemon that holds a ring for many processes, and its client.
//!
//! * [`protocol`]: the frames and replies on the socket (`docs/PROTOCOL.md`);
//! * [`server`]: the daemon, `auditring serve`'s engine;
//! * [`session`]: the client's side of the protocol, without I/O;
//! * [`client`]: a process's connection to it over a blocking socket, `auditring append
//!   --socket`'s engine;
//! * [`async_client`]: the same over tokio's asynchronous socket (feature `tokio`).

#[cfg(feature = "tokio")]
pub(crate) mod async_client;
pub(crate) mod client;
pub(crate) mod protocol;
pub(crate) mod server;
pub(crate) mod session;
