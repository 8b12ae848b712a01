//! Work counted while tagging, for progress within a long document: the
//! rows the encoder runs (NER windows and stance segment parts), planned
//! and done. One [`Work`] is shared by the tagger's threads and whoever
//! reads it (the CLI's progress bar).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Encoder rows planned and done; both only grow.
#[derive(Debug, Default)]
pub struct Work {
    planned: AtomicUsize,
    done: AtomicUsize,
}

impl Work {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// `rows` more are to be run.
    pub fn plan(&self, rows: usize) {
        self.planned.fetch_add(rows, Ordering::Relaxed);
    }

    /// `rows` more have been run.
    pub fn finish(&self, rows: usize) {
        self.done.fetch_add(rows, Ordering::Relaxed);
    }

    /// Back to zero (a new chunk of documents).
    pub fn reset(&self) {
        self.planned.store(0, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
    }

    /// Rows done and rows planned so far.
    pub fn progress(&self) -> (usize, usize) {
        (
            self.done.load(Ordering::Relaxed),
            self.planned.load(Ordering::Relaxed),
        )
    }
}

/// Counts on `work` when there is one.
pub(crate) fn plan(work: Option<&Work>, rows: usize) {
    if let Some(w) = work {
        w.plan(rows);
    }
}

/// Counts on `work` when there is one.
pub(crate) fn finish(work: Option<&Work>, rows: usize) {
    if let Some(w) = work {
        w.finish(rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_several_threads() {
        let work = Work::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    plan(Some(&work), 10);
                    finish(Some(&work), 7);
                });
            }
        });
        plan(None, 5);
        assert_eq!(work.progress(), (28, 40));
    }
}
