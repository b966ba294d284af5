//! What happens when one of a ring's threads panics: its ring is poisoned, so that no push
//! succeeds once a waiter has been told.
//!
//! The ring installs a hook on each of its threads when it starts it ([`set`]); the unwinding
//! runs it through [`thread_panicked`] as soon as it drops a waiter's receipt, or at the latest
//! when the thread's work returns. The hook lives here, apart from the ring, so that receipts
//! can run it without depending on the ring that owns them.

use std::cell::RefCell;
use std::thread;

use crate::error::Error;

/// Poisons the thread's ring with the cause given, closes its queue, and returns the error to
/// give waiters.
type Hook = Box<dyn Fn(std::io::Error) -> Error>;

thread_local! {
    /// The hook of the ring whose thread this is: set by the ring when it starts the thread.
    static ON_PANIC: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// Installs the current thread's hook.
pub(crate) fn set(hook: Hook) {
    ON_PANIC.with(|h| *h.borrow_mut() = Some(hook));
}

/// Removes the current thread's hook (and with it what it holds of the ring).
pub(crate) fn clear() {
    ON_PANIC.with(|h| h.borrow_mut().take());
}

/// Called while the current thread unwinds, before its state is dropped (by the first receipt
/// or flush it drops): poisons its ring, if it is one of a ring's threads, so that no push
/// succeeds once a waiter has been told; returns the error to give waiters ([`Error::Closed`]
/// on any other thread).
pub(crate) fn thread_panicked() -> Error {
    let thread = thread::current();
    let cause = std::io::Error::other(format!(
        "the {} thread panicked; nothing more can be made durable",
        thread.name().unwrap_or("unnamed")
    ));
    let hook = ON_PANIC.try_with(|h| h.try_borrow().ok().map(|h| h.as_ref().map(|f| f(cause))));
    match hook {
        Ok(Some(Some(error))) => error,
        // Not a ring's thread (a queue dropped by an application thread that unwinds).
        _ => Error::Closed,
    }
}
