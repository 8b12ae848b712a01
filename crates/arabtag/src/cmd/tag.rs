//! `arabtag tag`: tag documents with the model a config names.
//!
//! ```text
//! arabtag tag [--model models/default.toml] [--output FILE] [--format jsonl|conll|html] INPUT...
//! arabtag tag [--model CONFIG] --conll-in FILE [--output FILE]
//! ```
//!
//! Inputs are `.txt` files, folders (recursive), JSONL files of
//! `{"id", "text"}` records, or `-` for standard input. Output is one JSONL
//! record per input document, in input order; a document that cannot be read
//! or tagged gets an error record naming it, the others are still tagged,
//! and the exit code is 2. `--format conll` writes each word with its IOB2
//! tag instead (a blank line after every sentence); `--conll-in` tags
//! pre-tokenised CoNLL input (one token a line, further columns ignored) and
//! writes each token with its predicted tag, as a benchmark scores it: the
//! head's own types (`PERS`, `MISC`…, no label map), whole tokens (no
//! proclitic stripping), no rule-based dates. `--format html` writes one
//! self-contained page ([`crate::html`]).
//!
//! Inputs are read on a thread of their own, at most two chunks ahead of
//! the tagging, and tagged in chunks of what has been read (up to
//! [`CHUNK`]): a file in full chunks, a pipe as its lines arrive.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use arabtag_infer::pipeline::Work;
use arabtag_infer::{TagOptions, Tagged, Tagger};
use arabtag_records::inputs::{Input, InputFormat, inputs};
use arabtag_records::{Document, Entity, JsonlWriter, Record, Span};
use arabtag_tokenizer::{segments, words};
use clap::{Args, ValueEnum};

use super::Status;
use crate::output::{progress_bar, progress_counter};

/// Most documents handed to the model at a time (output is written and
/// flushed after each chunk).
const CHUNK: usize = 32;

/// How to read an input file ([`InputFormat`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// By extension (any case): `.jsonl`/`.json` are JSONL, other files
    /// named are text, in folders only `.txt` is; standard input is JSONL
    /// when its first line is a `{"id", "text"}` record, else text.
    Auto,
    /// Each file is one document (its id: the file name without `.txt`).
    Txt,
    /// Each line is a `{"id": ..., "text": ...}` record.
    Jsonl,
}

impl From<FormatArg> for InputFormat {
    fn from(arg: FormatArg) -> Self {
        match arg {
            FormatArg::Auto => Self::Auto,
            FormatArg::Txt => Self::Txt,
            FormatArg::Jsonl => Self::Jsonl,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One JSON record per document (ANNOTATION.md's shape).
    Jsonl,
    /// Each word and its IOB2 tag, a blank line after each sentence.
    Conll,
    /// One self-contained HTML page (right to left): each document with its
    /// entities marked by type and each sentence's stance labels, under a
    /// batch summary with filters.
    Html,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The model config (TOML): which transformer, which heads.
    #[arg(long, value_name = "CONFIG", default_value = super::DEFAULT_MODEL, env = "ARABTAG_MODEL")]
    pub model: PathBuf,

    /// Documents: .txt files, folders (recursive), .jsonl files of {"id","text"}, or - for stdin.
    #[arg(value_name = "INPUT", required_unless_present = "conll_in")]
    pub inputs: Vec<PathBuf>,

    /// How to read the inputs.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub input_format: FormatArg,

    /// Tag a pre-tokenised CoNLL file (token first on each line, blank line
    /// between sentences) as a benchmark: the head's own labels, whole tokens, no dates.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["inputs", "format"])]
    pub conll_in: Option<PathBuf>,

    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Jsonl)]
    pub format: OutputFormat,

    /// Windows or segments per encoder call.
    #[arg(long, default_value_t = arabtag_infer::tagger::DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(usize))]
    pub batch_size: usize,

    /// Threads for the matrix work (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,

    /// Never touch the network (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,

    /// Continue an interrupted run: keep the whole records already in
    /// --output (a torn last line is cut off), skip the inputs whose id is
    /// among them, and append the rest. JSONL output only.
    #[arg(long, requires = "output")]
    pub resume: bool,
}

pub fn run(args: &TagArgs) -> Result<Status> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.threads == Some(0) {
        bail!("--threads must be at least 1 (leave it out to use every core)");
    }
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("--threads")?;
    }
    if args.resume && (args.format != OutputFormat::Jsonl || args.conll_in.is_some()) {
        bail!("--resume continues JSONL output only");
    }
    let done = match (&args.output, args.resume) {
        (Some(path), true) => whole_records(path)?,
        _ => HashSet::new(),
    };
    let tagger = load(args)?;
    if args.resume && args.format == OutputFormat::Html {
        bail!("--resume continues JSONL output only");
    }
    let mut out = Output::open(args.output.as_deref(), args.resume, args.format)?;
    let stop = stop_flag()?;
    let status = match &args.conll_in {
        Some(path) => tag_conll(&tagger, path, &mut out)?,
        None => tag_inputs(&tagger, args, &mut out, done, &stop)?,
    };
    out.finish()?;
    if status == Status::Interrupted {
        crate::output::stderr_line(&format!(
            "interrupted: every record written is whole{}",
            match &args.output {
                Some(path) => format!("; continue with --resume -o {}", path.display()),
                None => String::new(),
            }
        ));
    }
    Ok(status)
}

/// Set when SIGINT or SIGTERM arrives: the run writes the records in hand
/// and stops. A second signal ends the process at once.
fn stop_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    #[cfg(unix)]
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))
            .context("cannot install the signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&flag))
            .context("cannot install the signal handler")?;
    }
    Ok(flag)
}

/// The ids of the whole records in the JSONL file at `path` (none when it
/// does not exist); a last line without its line break (a run killed
/// mid-write) is cut off the file.
fn whole_records(path: &Path) -> Result<HashSet<String>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        file.set_len(whole as u64)
            .with_context(|| format!("{}: cannot cut the torn last line", path.display()))?;
        crate::output::stderr_line(&format!(
            "{}: cut a torn last line ({} bytes)",
            path.display(),
            bytes.len() - whole
        ));
    }
    let mut ids = HashSet::new();
    for (n, line) in bytes[..whole].split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: serde_json::Value = serde_json::from_slice(line).with_context(|| {
            format!(
                "{}:{}: not a record; --resume needs the output of arabtag tag",
                path.display(),
                n + 1
            )
        })?;
        match value.get("id").and_then(|id| id.as_str()) {
            Some(id) => ids.insert(id.to_owned()),
            None => bail!("{}:{}: a record without an id", path.display(), n + 1),
        };
    }
    Ok(ids)
}

fn load(args: &TagArgs) -> Result<Tagger> {
    let model = super::verified_model(&args.model, args.offline)?;
    Tagger::load(
        &model,
        TagOptions {
            batch_size: args.batch_size,
            // A CoNLL benchmark is scored in its own labels and tokens.
            raw: args.conll_in.is_some(),
            ..TagOptions::default()
        },
    )
    .with_context(|| format!("cannot load the model of {}", args.model.display()))
}

fn tag_inputs(
    tagger: &Tagger,
    args: &TagArgs,
    out: &mut Output,
    done: HashSet<String>,
    stop: &AtomicBool,
) -> Result<Status> {
    let resuming = !done.is_empty();
    let skipped = Arc::new(AtomicUsize::new(0));
    let incoming = read_ahead(
        inputs(&args.inputs, args.input_format.into()),
        done,
        Arc::clone(&skipped),
    );
    let progress = progress_counter("documents");
    let work = Work::new();
    let tagging = AtomicBool::new(true);
    let (mut failed, mut written, mut interrupted) = (false, 0usize, false);
    std::thread::scope(|scope| -> Result<()> {
        if !progress.is_hidden() {
            // Progress within the chunk in hand (a long document is a
            // chunk of its own): the encoder rows run of those planned.
            scope.spawn(|| {
                while tagging.load(Ordering::Relaxed) {
                    let (rows, planned) = work.progress();
                    if let Some(percent) = (100 * rows).checked_div(planned) {
                        progress.set_message(format!(
                            "this batch {percent}% ({rows}/{planned} windows and segments)"
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
        let result = (|| -> Result<()> {
            loop {
                let Some(chunk) = next_chunk(&incoming, stop) else {
                    interrupted = stop.load(Ordering::SeqCst);
                    return Ok(());
                };
                work.reset();
                failed |= tag_chunk(
                    tagger,
                    args.format,
                    chunk,
                    out,
                    &work,
                    &progress,
                    &mut written,
                )?;
                if out.closed {
                    return Ok(());
                }
                // Whole records reach the file as they are tagged.
                out.flush()?;
            }
        })();
        tagging.store(false, Ordering::Relaxed);
        result
    })?;
    progress.finish_and_clear();
    if resuming {
        crate::output::stderr_line(&format!(
            "resuming: {} inputs already written were skipped, {written} written now",
            skipped.load(Ordering::SeqCst)
        ));
    }
    if interrupted {
        out.flush()?;
        return Ok(Status::Interrupted);
    }
    Ok(if failed { Status::Errors } else { Status::Ok })
}

/// Reads the inputs on a thread of their own, at most two chunks ahead of
/// the tagging (memory: the chunk in hand and those), leaving out those
/// whose id is in `done` (counted in `skipped`). The thread is not joined:
/// it may wait on standard input when the run stops.
fn read_ahead(
    inputs: impl Iterator<Item = Input> + Send + 'static,
    done: HashSet<String>,
    skipped: Arc<AtomicUsize>,
) -> Receiver<Input> {
    let (send, receive) = std::sync::mpsc::sync_channel(2 * CHUNK);
    std::thread::spawn(move || {
        for input in inputs {
            if done.contains(input.id()) {
                skipped.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            if send.send(input).is_err() {
                return;
            }
        }
    });
    receive
}

/// The next inputs to tag: waits for one, then takes those already read,
/// up to [`CHUNK`] (a stream is tagged as it arrives, a file in chunks).
/// `None` at the end of the inputs or when `stop` is set.
fn next_chunk(incoming: &Receiver<Input>, stop: &AtomicBool) -> Option<Vec<Input>> {
    let first = loop {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        match incoming.recv_timeout(Duration::from_millis(100)) {
            Ok(input) => break input,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    };
    let mut chunk = vec![first];
    while chunk.len() < CHUNK {
        match incoming.try_recv() {
            Ok(input) => chunk.push(input),
            Err(_) => break,
        }
    }
    Some(chunk)
}

/// Tags the documents of `chunk` and writes a record (or CoNLL block) for
/// every input in it, in order; whether any was an error.
fn tag_chunk(
    tagger: &Tagger,
    format: OutputFormat,
    chunk: Vec<Input>,
    out: &mut Output,
    work: &Work,
    progress: &indicatif::ProgressBar,
    written: &mut usize,
) -> Result<bool> {
    let mut failed = false;
    for Tagged { record, text } in tagger.tag_inputs(chunk, Some(work))? {
        let text = text.as_deref();
        if let Some(message) = &record.error {
            failed = true;
            crate::output::stderr_line(&format!("error: document {}: {message}", record.id));
        }
        match (format, text) {
            (OutputFormat::Jsonl, _) => out.record(&record)?,
            (OutputFormat::Conll, Some(text)) if record.error.is_none() => {
                out.conll(
                    Some(&record.id),
                    text,
                    &sentence_words(text),
                    &record.entities,
                )?;
            }
            (OutputFormat::Conll, _) => {
                out.conll_error(&record.id, record.error.as_deref().unwrap_or_default())?;
            }
            (OutputFormat::Html, text) => out.html(&record, text)?,
        }
        *written += 1;
        progress.inc(1);
    }
    Ok(failed)
}

/// Tags each sentence of a CoNLL file as one document and writes every
/// token with its predicted IOB2 tag.
fn tag_conll(tagger: &Tagger, path: &Path, out: &mut Output) -> Result<Status> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read (UTF-8 expected)", path.display()))?;
    let mut sentences: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.lines().filter(|l| !arabtag_eval::conll::is_comment(l)) {
        match line.split_whitespace().next() {
            Some(token) => sentences.last_mut().map(|s| s.push(token)).unwrap_or(()),
            None => sentences.push(Vec::new()),
        }
    }
    sentences.retain(|s| !s.is_empty());
    let progress = progress_bar(sentences.len() as u64, "documents");
    let mut failed = false;
    for (chunk_index, chunk) in sentences.chunks(CHUNK).enumerate() {
        let docs: Vec<Document> = chunk
            .iter()
            .enumerate()
            .map(|(i, tokens)| Document {
                id: format!("{}:{}", path.display(), chunk_index * CHUNK + i + 1),
                text: tokens.join(" "),
            })
            .collect();
        for (record, doc) in tagger.tag(&docs)?.iter().zip(&docs) {
            if let Some(message) = &record.error {
                failed = true;
                crate::output::stderr_line(&format!("error: sentence {}: {message}", record.id));
            }
            // One sentence a document: no `# id` lines in this benchmark output.
            out.conll(None, &doc.text, &[words(&doc.text)], &record.entities)?;
            progress.inc(1);
        }
        if out.closed {
            break;
        }
    }
    progress.finish_and_clear();
    Ok(if failed { Status::Errors } else { Status::Ok })
}

/// The words of each segment of `text` (those wholly inside it), in one
/// pass over the words: linear in the text.
pub fn sentence_words(text: &str) -> Vec<Vec<Span>> {
    let ws = words(text);
    let mut next = 0;
    segments(text)
        .into_iter()
        .map(|s| {
            while next < ws.len() && ws[next].start < s.start {
                next += 1;
            }
            let mut sentence = Vec::new();
            while next < ws.len() && ws[next].start < s.end {
                if ws[next].end <= s.end {
                    sentence.push(ws[next]);
                }
                next += 1;
            }
            sentence
        })
        .collect()
}

/// IOB2 tags of `words` (in text order, as [`words`] gives them): a word
/// any entity overlaps takes its type, `B-` on the entity's first word; a
/// later entity overwrites an earlier one. Each entity looks only at the
/// words from the first that ends after its start.
pub fn iob2<'e>(words: &[Span], entities: impl IntoIterator<Item = &'e Entity>) -> Vec<String> {
    let mut tags = vec!["O".to_string(); words.len()];
    for entity in entities {
        let span = entity.span();
        let mut first = true;
        let from = words.partition_point(|w| w.end <= span.start);
        for (tag, word) in tags[from..].iter_mut().zip(&words[from..]) {
            if word.start >= span.end {
                break;
            }
            if word.overlap(&span) > 0 {
                *tag = format!("{}-{}", if first { "B" } else { "I" }, entity.kind);
                first = false;
            }
        }
    }
    tags
}

/// Where the output goes; a reader that went away ends the run quietly.
struct Output {
    writer: JsonlWriter<BufWriter<Box<dyn Write>>>,
    closed: bool,
    /// The HTML page's summary, written at the end (`--format html`).
    page: Option<crate::html::TagPage>,
}

/// `s` with line breaks as spaces, for a `# key = value` line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

impl Output {
    /// Standard output, or the file at `path`: created anew, or appended
    /// to when `append` (`--resume`).
    fn open(path: Option<&Path>, append: bool, format: OutputFormat) -> Result<Self> {
        let sink: Box<dyn Write> = match path {
            Some(p) if append => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("{}: cannot open to append", p.display()))?,
            ),
            Some(p) => Box::new(
                File::create(p).with_context(|| format!("{}: cannot create", p.display()))?,
            ),
            None => Box::new(io::stdout()),
        };
        let mut out = Self {
            writer: JsonlWriter::new(BufWriter::new(sink)),
            closed: false,
            page: None,
        };
        if format == OutputFormat::Html {
            let start = crate::html::page_start("arabtag tag");
            let result = out.writer_mut().write_all(start.as_bytes());
            out.check(result)?;
            out.page = Some(crate::html::TagPage::default());
        }
        Ok(out)
    }

    /// A document's article in the HTML page (`text`: `None` for an input
    /// that could not be read).
    fn html(&mut self, record: &Record, text: Option<&str>) -> Result<()> {
        let Some(page) = self.page.as_mut() else {
            bail!("HTML output was not opened");
        };
        let block = page.document(record, text);
        let result = self.writer_mut().write_all(block.as_bytes());
        self.check(result)
    }

    fn record(&mut self, record: &Record) -> Result<()> {
        let result = self.writer.write(record);
        self.check(result.map_err(|e| match e {
            arabtag_records::RecordsError::Write(io) => io,
            other => io::Error::other(other),
        }))
    }

    /// A failed document in CoNLL output: `# id = ID`, `# error = MESSAGE`
    /// and a blank line (line breaks in either become spaces), in one write.
    fn conll_error(&mut self, id: &str, message: &str) -> Result<()> {
        let block = format!(
            "# id = {}\n# error = {}\n\n",
            one_line(id),
            one_line(message)
        );
        let result = self.writer_mut().write_all(block.as_bytes());
        self.check(result)
    }

    /// A document in CoNLL output, in one write: `# id = ID` (which
    /// `arabtag eval --conll` skips) when given, then each sentence's words
    /// and IOB2 tags and a blank line.
    fn conll(
        &mut self,
        id: Option<&str>,
        text: &str,
        sentences: &[Vec<Span>],
        entities: &[Entity],
    ) -> Result<()> {
        let chars = arabtag_records::CharText::new(text);
        // Each sentence meets only the entities that overlap its words:
        // found per entity by binary search over the sentences (in order,
        // disjoint), kept in the entities' own order.
        let mut at = 0;
        let ranges: Vec<(usize, usize)> = sentences
            .iter()
            .map(|s| {
                // A sentence without words is an empty range where the last ended.
                if let (Some(a), Some(b)) = (s.first(), s.last()) {
                    at = b.end;
                    (a.start, b.end)
                } else {
                    (at, at)
                }
            })
            .collect();
        let mut meets: Vec<Vec<&Entity>> = vec![Vec::new(); sentences.len()];
        for entity in entities {
            let from = ranges.partition_point(|&(_, end)| end <= entity.start);
            for (i, &(start, end)) in ranges.iter().enumerate().skip(from) {
                if start >= entity.end {
                    break;
                }
                if start < end {
                    meets[i].push(entity);
                }
            }
        }
        let mut block = id.map_or_else(String::new, |id| format!("# id = {}\n", one_line(id)));
        for (sentence, meeting) in sentences.iter().zip(&meets) {
            for (word, tag) in sentence.iter().zip(iob2(sentence, meeting.iter().copied())) {
                block.push_str(chars.slice(word.start, word.end).unwrap_or_default());
                block.push(' ');
                block.push_str(&tag);
                block.push('\n');
            }
            block.push('\n');
        }
        let result = self.writer_mut().write_all(block.as_bytes());
        self.check(result)
    }

    fn writer_mut(&mut self) -> &mut BufWriter<Box<dyn Write>> {
        self.writer.get_mut()
    }

    fn check(&mut self, result: io::Result<()>) -> Result<()> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other.context("cannot write the output"),
        }
    }

    fn flush(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.writer_mut().flush();
        self.check(result)
    }

    fn finish(mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        if let Some(page) = self.page.take() {
            let end = page.finish();
            let result = self.writer_mut().write_all(end.as_bytes());
            self.check(result)?;
        }
        let result = self.writer_mut().flush();
        self.check(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_words_keep_the_words_inside_each_segment() {
        let text = "أ ب. ج د\nه و";
        let got: Vec<Vec<(usize, usize)>> = sentence_words(text)
            .iter()
            .map(|s| s.iter().map(|w| (w.start, w.end)).collect())
            .collect();
        // Words of the whole text, each in the segment that holds it (the
        // first ends with its full stop).
        assert_eq!(
            got,
            [
                vec![(0, 1), (2, 4)],
                vec![(5, 6), (7, 8)],
                vec![(9, 10), (11, 12)]
            ]
        );
        assert!(sentence_words("").is_empty());
    }

    #[test]
    fn iob2_tags_every_overlapped_word() {
        let text = "قال بوتين في وأرمينيا الجنوبية اليوم";
        let ws = words(text);
        let entity = |start, end, kind: &str| Entity {
            start,
            end,
            kind: kind.into(),
            text: String::new(),
            score: None,
        };
        // بوتين = 4..9; أرمينيا الجنوبية = 14..30 (inside the word وأرمينيا).
        let tags = iob2(&ws, &[entity(4, 9, "PER"), entity(14, 30, "LOC")]);
        assert_eq!(tags, ["O", "B-PER", "O", "B-LOC", "I-LOC", "O"]);
    }
}
