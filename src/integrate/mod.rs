//! Integrations: the ring behind the logging facades a service already uses.
//!
//! * [`tracing_layer`]: a `tracing_subscriber::Layer` that records chosen `tracing` events
//!   (feature `tracing`);
//! * [`log_backend`]: a `log::Log` backend that records chosen `log` records (feature `log`);
//! * [`sink`]: what both share: how an event gets into the ring when its queue is full
//!   ([`Overflow`](sink::Overflow)), the record of events dropped, and the guard that flushes
//!   and closes the ring.

#[cfg(feature = "log")]
pub(crate) mod log_backend;
#[cfg(any(feature = "tracing", feature = "log"))]
pub(crate) mod sink;
#[cfg(feature = "tracing")]
pub(crate) mod tracing_layer;
