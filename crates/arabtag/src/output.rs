//! Writing to stdout and stderr (a closed pipe is not an error), progress
//! bars on a terminal, and JSON reports.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result};
use arabtag_train::RunObserver;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A counter of `what` with no known end (inputs read as they are tagged)
/// and a message, on a terminal; hidden when stderr is not one.
pub fn progress_counter(what: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let template = format!("{{spinner}} {{pos}} {what}, {{per_sec}}; {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Writes `text` to stdout; a reader that went away (broken pipe) is fine.
pub fn stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes one line to stderr, ignoring failure (there is nowhere left to say it).
pub fn stderr_line(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// `error: top: cause: cause…`, the whole chain.
pub fn print_error(err: &anyhow::Error) {
    let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
    stderr_line(&format!("error: {}", chain.join(": ")));
}

/// A progress bar over `len` units of `what` on a terminal; hidden when
/// stderr is not one.
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let template = format!("{{bar:40}} {{pos}}/{{len}} {what}, {{per_sec}}, {{eta}} left");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// How training runs report here: lines on standard error, progress bars
/// on a terminal.
#[derive(Debug)]
pub struct Terminal;

impl RunObserver for Terminal {
    fn line(&self, text: &str) {
        stderr_line(text);
    }

    fn progress(&self, len: u64, what: &str) -> Box<dyn FnMut(usize) + '_> {
        let bar = Cleared(progress_bar(len, what));
        Box::new(move |n| bar.0.inc(n as u64))
    }
}

/// A progress bar cleared when the work is done (dropped).
struct Cleared(ProgressBar);

impl Drop for Cleared {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Writes a JSON report (pretty, with a final newline), creating its
/// folder.
pub fn write_json_report(path: &Path, value: &serde_json::Value) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(arabtag_train::write_json(path, value)?)
}
