//! A resolved model config described for a person (`arabtag models
//! show`; `--json` is the config's own serialisation).

use std::fmt::Write as _;

use serde::Serialize;

use super::{
    ModelFile, NerConfig, NerHead, ResolvedModel, ResolvedSource, StanceConfig, StanceMethod,
    WeightsFormat,
};

impl ResolvedModel {
    /// The resolved config for a person (`arabtag models show`): one
    /// `key value` line each, every file with its role, path and pinned
    /// sha256, the source, the normaliser's steps, the tasks.
    pub fn describe(&self) -> String {
        let m = self;
        let mut out = String::new();
        let mut line = |key: &str, value: &str| {
            let _ = writeln!(out, "{}", format!("{key:<13} {value}").trim_end());
        };
        line("config", &m.config_path.display().to_string());
        if let Some(name) = &m.name {
            line("name", name);
        }
        if let Some(description) = &m.description {
            line("description", description);
        }
        line("source", &source(&m.source));
        line(
            "architecture",
            &format!("{}, {} positions", m.architecture, m.max_positions),
        );
        let weights = match (m.weights_format, m.quantized) {
            // int8 = true: the 4-bit matrices go to 8-bit rows at load and
            // `quantized` is not read (the loader's order).
            (WeightsFormat::E5Q4, _) if m.int8 => {
                "e5 E5S1, layer matrices as 8-bit rows (int8 products)".to_owned()
            }
            (WeightsFormat::E5Q4, true) => "e5 E5S1, matrices stay 4-bit (Q4_0)".to_owned(),
            (WeightsFormat::E5Q4, false) => {
                format!("e5 E5S1, dequantised to {}", m.dtype)
            }
            (WeightsFormat::Safetensors, _) => "safetensors".to_owned(),
        };
        line("weights", &format!("{weights}; dtype {}", m.dtype));
        line("normalizer", &normalizer(&m.normalizer));
        line("files", "");
        for f in m.files.iter() {
            out.push_str(&file(f));
        }
        match &m.ner {
            Some(ner) => out.push_str(&describe_ner(ner)),
            None => out.push_str(&format!("{:<13} none\n", "ner")),
        }
        let dates = match m.dates {
            Some(d) if d.enabled => "rules (DATE), merged with the NER spans",
            Some(_) => "off (enabled = false)",
            None => "none",
        };
        out.push_str(&format!("{:<13} {dates}\n", "dates"));
        match &m.stance {
            Some(stance) => out.push_str(&describe_stance(stance)),
            None => out.push_str(&format!("{:<13} none\n", "stance")),
        }
        out
    }
}

fn source(s: &ResolvedSource) -> String {
    match s {
        ResolvedSource::Local { dir } => format!("local folder {}", dir.display()),
        ResolvedSource::Hub {
            repo,
            revision,
            cache,
        } => format!(
            "hub {repo} at revision {revision} (cache {})",
            cache.display()
        ),
        ResolvedSource::E5 => "the e5 4-bit file".to_owned(),
    }
}

fn file(f: &ModelFile) -> String {
    let sha = f.sha256.map_or_else(
        || format!("not pinned (add sha256 to {})", f.key),
        |s| s.to_string(),
    );
    format!(
        "  {:<11} {}\n  {:<11} sha256 {sha}\n",
        f.role.to_string(),
        f.path.display(),
        ""
    )
}

fn normalizer(n: &(impl Serialize + std::fmt::Debug)) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(n) else {
        return format!("{n:?}");
    };
    let pick = |on: bool| -> Vec<&str> {
        map.iter()
            .filter(|(_, v)| v.as_bool() == Some(on))
            .map(|(k, _)| k.as_str())
            .collect()
    };
    let (on, off) = (pick(true), pick(false));
    let mut s = if on.is_empty() {
        "nothing".to_owned()
    } else {
        on.join(", ")
    };
    if !off.is_empty() {
        s.push_str(&format!("; off: {}", off.join(", ")));
    }
    s
}

fn describe_ner(ner: &NerConfig) -> String {
    let head = match &ner.head {
        NerHead::Checkpoint => "the checkpoint's classifier".to_owned(),
        NerHead::File(f) => format!("head file {}", f.path.display()),
    };
    let map: Vec<String> = ner.map.iter().map(|(k, v)| format!("{k} → {v}")).collect();
    let mut map = map.join(", ");
    let dropped = ner.dropped_types();
    if !dropped.is_empty() {
        map.push_str(&format!("; dropped: {}", dropped.join(", ")));
    }
    let mut out = format!(
        "{:<13} {head}; aggregation {}; windows of {} positions, stride {}{}\n  {:<11} {}\n  {:<11} {map}\n",
        "ner",
        ner.aggregation,
        ner.window,
        ner.stride,
        match ner.context {
            crate::pipeline::NerContext::Document => "",
            crate::pipeline::NerContext::Segment => ", each segment apart",
        },
        "labels",
        ner.labels.join(" "),
        "map",
    );
    if let Some(names) = &ner.names {
        out.push_str(&format!(
            "  {:<11} {} (evidence for the proclitic rule)\n",
            "names",
            names.path.display()
        ));
    }
    out
}

fn describe_stance(stance: &StanceConfig) -> String {
    let mut out = String::new();
    let header = match &stance.method {
        StanceMethod::Head {
            head,
            labels,
            trunk,
        } => {
            let labels: Vec<&str> = labels.iter().map(|l| l.as_str()).collect();
            let on = match trunk {
                crate::config::StanceTrunk::Encoder => "",
                crate::config::StanceTrunk::Ner => ", its layers on the NER network's",
            };
            format!(
                "head file {} (outputs: {}{on})",
                head.path.display(),
                labels.join(", ")
            )
        }
        StanceMethod::Prototypes { prefix, .. } => {
            format!("prototypes, prefix {prefix:?}")
        }
        StanceMethod::Nli {
            hypothesis_template,
            entailment_label,
            ..
        } => format!(
            "nli, hypothesis {hypothesis_template:?}, entailment label {entailment_label:?}"
        ),
    };
    let _ = writeln!(out, "{:<13} {header}", "stance");
    for (label, threshold) in &stance.thresholds {
        let detail = match &stance.method {
            StanceMethod::Prototypes { prototypes, .. } => prototypes
                .get(label)
                .map(|p| {
                    format!(
                        "; {} Arabic, {} English descriptions",
                        p.ar.len(),
                        p.en.len()
                    )
                })
                .unwrap_or_default(),
            StanceMethod::Nli {
                candidate_labels, ..
            } => candidate_labels
                .get(label)
                .map(|t| format!("; {t:?}"))
                .unwrap_or_default(),
            StanceMethod::Head { .. } => String::new(),
        };
        let calibrated = stance
            .calibration
            .as_ref()
            .and_then(|c| c.get(label))
            .map(|[a, b]| format!(" on σ({a}·logit(s) + {b})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<11} threshold {threshold}{calibrated}{detail}",
            label.as_str()
        );
    }
    out
}
