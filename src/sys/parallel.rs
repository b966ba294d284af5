//! Spreading independent work (leaf hashes, line parsing) over the machine's cores.

use std::num::NonZeroUsize;
use std::sync::OnceLock;
use std::thread;

/// Below this many items a map runs on the calling thread: a thread costs more than it saves.
const MIN_PER_THREAD: usize = 256;

/// How many threads to use: the machine's parallelism.
fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| thread::available_parallelism().map_or(1, NonZeroUsize::get))
}

/// `items.iter().map(f).collect()`, with the items split in contiguous parts across threads;
/// the results come back in order.
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    par_map_by(items, MIN_PER_THREAD, f)
}

/// [`par_map`] for items that each stand for much work: a thread is used for as few as
/// `min_per_thread` of them.
pub(crate) fn par_map_by<T: Sync, R: Send>(
    items: &[T],
    min_per_thread: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let parts = threads().min(items.len() / min_per_thread.max(1)).max(1);
    if parts == 1 {
        return items.iter().map(f).collect();
    }
    let per = items.len().div_ceil(parts);
    let f = &f;
    thread::scope(|s| {
        let mut chunks = items.chunks(per);
        // The calling thread takes the first part itself.
        let first = chunks.next().unwrap_or(&[]);
        let handles: Vec<_> = chunks
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out: Vec<R> = first.iter().map(f).collect();
        for h in handles {
            out.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_for_any_size() {
        for n in [0, 1, 255, 256, 257, 1000, 10_007] {
            let items: Vec<u64> = (0..n).collect();
            assert_eq!(
                par_map(&items, |x| x * 2),
                items.iter().map(|x| x * 2).collect::<Vec<_>>()
            );
        }
    }
}
