//! Progress bars on stderr for long work, shown only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar, or nothing when stderr is piped or redirected.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar counting `unit` (`"records"` or `"bytes"`), labelled `what`.
    pub fn new(what: &str, unit: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let template = if unit == "bytes" {
            "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
        } else {
            "{msg} [{bar:40}] {pos}/{len} records ({per_sec}, {eta})"
        };
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        Progress(Some(bar))
    }

    /// Moves the bar to `done` of `total`.
    pub fn update(&self, done: u64, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total);
            bar.set_position(done);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
