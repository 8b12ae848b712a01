//! Writing to stdout and stderr: a closed pipe is not an error.

use std::io::{self, Write};

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
