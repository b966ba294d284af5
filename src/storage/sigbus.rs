//! Saying which file was cut when a write through a segment's mapping raises `SIGBUS`.
//!
//! A store into a mapped page that no longer has a file behind it (another process truncated
//! the segment: `truncate -s 0`, logrotate's `copytruncate`) makes the kernel send `SIGBUS` to
//! the writing thread. Nothing can be done then to save the write: the process must die. What
//! can be done is to say why, as the best mmap-based systems do: every writable mapping of a
//! segment is registered here (`crate::storage::mapped`) with its address range and a message naming
//! its file, precomputed when it is mapped; a `SIGBUS` handler, installed once per process the
//! first time a segment is mapped, looks the faulting address up and writes
//!
//! ```text
//! auditring: SIGBUS at byte N of PATH: the file was truncated by another process (...); the log can be recovered by reopening it, ...
//! ```
//!
//! to stderr with `write(2)`, restores the default action and raises the signal again, so the
//! process dies of `SIGBUS` as before (a core dump, an exit status a supervisor understands). A
//! fault outside every registered range is handed to the handler installed before this one,
//! if any.
//!
//! The handler only does what is async-signal-safe: it reads a fixed array of atomics (no
//! allocation, no lock), formats a number into a stack buffer, and calls `write`, `sigaction`
//! and `raise`.

use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// How many mappings can be registered at once. A ring maps its active segment and, while it
/// seals one, the segment before; further mappings go unregistered (a `SIGBUS` in them is then
/// reported without a file name, by the default action).
const SLOTS: usize = 64;

/// The longest message kept per mapping; a longer one (a very long path) is cut.
const MESSAGE_MAX: usize = 1024;

/// One registered mapping. `len` is set last and cleared first: a slot whose `len` is not 0
/// holds a complete entry.
struct Slot {
    /// Claimed by a registration (set by compare-and-swap, cleared when unregistered).
    used: AtomicBool,
    start: AtomicUsize,
    len: AtomicUsize,
    /// The message after the byte offset: `" of PATH: the file was truncated ...\n"`.
    message: [AtomicU8; MESSAGE_MAX],
    message_len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    used: AtomicBool::new(false),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    message: [const { AtomicU8::new(0) }; MESSAGE_MAX],
    message_len: AtomicUsize::new(0),
};

static REGISTRY: [Slot; SLOTS] = [FREE; SLOTS];

/// The action in place before ours, written once before ours is installed.
struct Previous(std::cell::UnsafeCell<MaybeUninit<libc::sigaction>>);

// SAFETY: written once, inside `INSTALL`, before the handler that reads it is installed; only
// read afterwards.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(std::cell::UnsafeCell::new(MaybeUninit::uninit()));
static HAVE_PREVIOUS: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// A registered mapping; unregisters it when dropped (before the mapping is unmapped).
#[derive(Debug)]
pub(crate) struct Registration(Option<usize>);

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            let slot = &REGISTRY[i];
            slot.len.store(0, Ordering::Release);
            slot.start.store(0, Ordering::Release);
            slot.used.store(false, Ordering::Release);
        }
    }
}

/// Registers the mapping `[start, start + len)` of the file at `path`, installing the handler
/// first if this is the process's first.
pub(crate) fn register(start: *const u8, len: usize, path: &Path) -> Registration {
    INSTALL.call_once(install);
    let message = format!(
        " of {}: the file was truncated by another process while auditring wrote it through \
         its mapping (truncate, logrotate copytruncate, an editor: never rotate a log that \
         way); the log can be recovered by reopening it, to its last committed state if the \
         cut left that intact\n",
        path.display()
    );
    let bytes = message.as_bytes();
    let n = bytes.len().min(MESSAGE_MAX);
    for (i, slot) in REGISTRY.iter().enumerate() {
        if slot
            .used
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        for (cell, &b) in slot.message.iter().zip(&bytes[..n]) {
            cell.store(b, Ordering::Relaxed);
        }
        slot.message_len.store(n, Ordering::Relaxed);
        slot.start.store(start as usize, Ordering::Relaxed);
        slot.len.store(len, Ordering::Release);
        return Registration(Some(i));
    }
    Registration(None)
}

/// Installs the handler, keeping the previous action to hand other faults to.
fn install() {
    // SAFETY: sigaction with a zeroed struct filled in as the man page says; `PREVIOUS` is
    // written here only, before the handler that reads it can run (it is not installed yet
    // when the previous action is read into it).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&raw mut action.sa_mask);
        let previous = (*PREVIOUS.0.get()).as_mut_ptr();
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), previous) == 0 {
            HAVE_PREVIOUS.store(true, Ordering::Release);
        }
        libc::sigaction(libc::SIGBUS, &raw const action, std::ptr::null_mut());
    }
}

/// Writes all of `bytes` to stderr, as far as it can.
fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: write(2) of a valid buffer; async-signal-safe.
        let n = unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// The `SIGBUS` handler.
extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    for slot in &REGISTRY {
        let len = slot.len.load(Ordering::Acquire);
        let start = slot.start.load(Ordering::Relaxed);
        if len == 0 || addr < start || addr - start >= len {
            continue;
        }
        let mut buf = [0u8; 64 + MESSAGE_MAX];
        let head = b"auditring: SIGBUS at byte ";
        buf[..head.len()].copy_from_slice(head);
        let mut at = head.len();
        // The offset in the file, in decimal.
        let mut digits = [0u8; 20];
        let mut n = addr - start;
        let mut k = digits.len();
        loop {
            k -= 1;
            digits[k] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        buf[at..at + digits.len() - k].copy_from_slice(&digits[k..]);
        at += digits.len() - k;
        let m = slot.message_len.load(Ordering::Relaxed).min(MESSAGE_MAX);
        for cell in &slot.message[..m] {
            buf[at] = cell.load(Ordering::Relaxed);
            at += 1;
        }
        write_stderr(&buf[..at]);
        die(sig);
        return;
    }
    chain(sig, info, context);
}

/// Restores the default action and raises `sig` again: delivered when the handler returns
/// (or, for a fault, when the store is retried), it ends the process as `SIGBUS` does.
fn die(sig: libc::c_int) {
    // SAFETY: sigaction and raise are async-signal-safe.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&raw mut dfl.sa_mask);
        libc::sigaction(sig, &raw const dfl, std::ptr::null_mut());
        libc::raise(sig);
    }
}

/// Hands a fault outside every registered mapping to the action that was in place before.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    if !HAVE_PREVIOUS.load(Ordering::Acquire) {
        die(sig);
        return;
    }
    // SAFETY: written before this handler was installed, never again.
    let previous = unsafe { (*PREVIOUS.0.get()).assume_init_ref() };
    let h = previous.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Ignoring a fault would retry it forever: the default action, as the kernel would.
        die(sig);
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, context);
    } else {
        // SAFETY: a handler installed without SA_SIGINFO takes the signal number only.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}
