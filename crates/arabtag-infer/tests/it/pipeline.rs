//! The NER runner end to end: a real `SubwordEncoder` over a tokenizer.json
//! built here, and either a real transformer (candle-transformers' BERT
//! with random weights, wrapped in our `Encoder`) or a lexicon model whose
//! labels are known, so that exact entities can be asserted.

use crate::common;

use std::path::Path;

use arabtag_infer::InferError;
use arabtag_infer::models::Encoder;
use arabtag_infer::pipeline::aggregate::aggregate;
use arabtag_infer::pipeline::{
    Aggregation, Decoding, DocLogits, LabelMap, LabelScheme, NerModel, NerOptions, Proclitics,
    decode_entities, ner_logits, tag_ner,
};
use arabtag_records::{CharText, Entity};
use arabtag_tokenizer::{SubwordEncoder, windows};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::bert::{BertModel, Config};

const LABELS: [&str; 9] = [
    "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC",
];

/// Pieces after `<unk> <s> </s> <pad> ▁` (ids 0–4), each with the label the
/// lexicon model gives it and how strongly.
const PIECES: [(&str, &str, f32); 44] = [
    ("▁قال", "O", 10.0),
    ("▁في", "O", 10.0),
    ("▁إن", "O", 10.0),
    ("▁لا", "O", 10.0),
    ("▁تزال", "O", 10.0),
    ("▁و", "O", 5.0),
    ("▁«", "O", 5.0),
    ("»", "O", 5.0),
    ("،", "O", 5.0),
    (".", "O", 5.0),
    ("▁فلاديمير", "B-PER", 10.0),
    ("▁بوتين", "I-PER", 10.0),
    ("▁باكو", "B-LOC", 10.0),
    ("أرمينيا", "B-LOC", 10.0),
    ("▁أرمينيا", "B-LOC", 10.0),
    ("روسيا", "B-LOC", 10.0),
    ("▁للاتحاد", "B-ORG", 10.0),
    ("▁الأوروبي", "I-ORG", 10.0),
    ("▁والقاهرة", "B-LOC", 10.0),
    ("▁لاتفيا", "B-LOC", 10.0),
    ("▁رويترز", "B-MISC", 10.0),
    ("▁موسكو", "B-LOC", 10.0),
    ("▁يريفان", "B-LOC", 10.0),
    ("▁الكرملين", "B-ORG", 10.0),
    ("▁عام", "O", 10.0),
    ("▁2023", "O", 10.0),
    ("▁سبتمبر", "O", 10.0),
    ("▁قمة", "O", 10.0),
    ("▁السلام", "O", 10.0),
    ("▁الحرب", "O", 10.0),
    ("▁النفط", "O", 10.0),
    ("▁الغاز", "O", 10.0),
    ("▁زيارة", "O", 10.0),
    ("▁الرئيس", "O", 10.0),
    ("▁وزير", "O", 10.0),
    ("▁الخارجية", "O", 10.0),
    ("▁أذربيجان", "B-LOC", 10.0),
    ("▁كاراباخ", "B-LOC", 10.0),
    ("▁القوقاز", "B-LOC", 10.0),
    ("▁تركيا", "B-LOC", 10.0),
    ("▁مع", "O", 10.0),
    ("▁بين", "O", 10.0),
    ("▁من", "O", 10.0),
    ("▁على", "O", 10.0),
];

/// Words that are one piece each (`▁` + word), for documents of known length.
fn single_words() -> Vec<&'static str> {
    PIECES
        .iter()
        .filter_map(|(p, _, _)| p.strip_prefix('▁'))
        .filter(|w| !matches!(*w, "و" | "«" | "للاتحاد"))
        .collect()
}

/// A Unigram tokenizer behind a Metaspace pre-tokenizer with `<s> $A </s>`.
pub(crate) fn tokenizer(dir: &Path) -> SubwordEncoder {
    let pieces: Vec<&str> = PIECES.iter().map(|(p, _, _)| *p).collect();
    common::unigram_tokenizer(dir, &pieces)
}

pub(crate) const VOCAB: usize = 5 + PIECES.len();

/// candle-transformers' BERT as our `Encoder`.
pub(crate) struct TinyBert {
    model: BertModel,
    config: Config,
}

impl std::fmt::Debug for TinyBert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TinyBert")
            .field("config", &self.config)
            .finish()
    }
}

impl Encoder for TinyBert {
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError> {
        let types = input_ids.zeros_like()?;
        Ok(self
            .model
            .forward(input_ids, &types, Some(attention_mask))?)
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }
}

/// A BERT of hidden 32, 2 layers, 2 heads with random weights, and a random
/// linear token head of 9 labels. The weights are drawn from a seeded
/// generator, not candle's unseeded one (the tests that ask a random model
/// to tag something failed about one run in twenty): what candle set to a
/// constant (LayerNorm) stays; the rest is normal with a spread of one over
/// the square root of its last dimension.
pub(crate) fn tiny_bert(max_positions: usize) -> (TinyBert, candle_nn::Linear) {
    let config = Config {
        vocab_size: VOCAB,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 64,
        max_position_embeddings: max_positions,
        pad_token_id: 3,
        ..Config::default()
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = BertModel::load(vb.pp("bert"), &config).unwrap();
    let head = candle_nn::linear(32, LABELS.len(), vb.pp("classifier")).unwrap();
    let mut rng = common::Rng::new(max_positions as u64);
    let data = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let t = var.as_tensor();
        let flat = t.flatten_all().unwrap();
        let (lo, hi) = (flat.min(0).unwrap(), flat.max(0).unwrap());
        if lo.to_scalar::<f32>().unwrap() == hi.to_scalar::<f32>().unwrap() {
            continue;
        }
        let spread = 1.0 / (*t.dims().last().unwrap() as f32).sqrt();
        let values = rng.values(t.elem_count(), 0.0, spread);
        var.set(&Tensor::from_vec(values, t.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    drop(data);
    (TinyBert { model, config }, head)
}

/// One-hot ids as hidden states; with [`lexicon_head`], each piece gets its
/// label from [`PIECES`]. Fails on a batch holding `poison`.
#[derive(Debug)]
pub(crate) struct Lexicon {
    pub(crate) poison: Option<u32>,
}

impl Encoder for Lexicon {
    fn forward(&self, input_ids: &Tensor, _mask: &Tensor) -> Result<Tensor, InferError> {
        let ids = input_ids.flatten_all()?;
        if let Some(p) = self.poison
            && ids.to_vec1::<u32>()?.contains(&p)
        {
            return Err(candle_core::Error::Msg("poisoned".into()).into());
        }
        let (b, s) = input_ids.dims2()?;
        let eye = Tensor::eye(VOCAB, DType::F32, &Device::Cpu)?;
        Ok(eye.index_select(&ids, 0)?.reshape((b, s, VOCAB))?)
    }

    fn hidden_size(&self) -> usize {
        VOCAB
    }

    fn max_positions(&self) -> usize {
        512
    }
}

fn lexicon_head() -> impl Fn(&Tensor) -> Result<Tensor, InferError> {
    let mut w = vec![0f32; VOCAB * LABELS.len()];
    for (i, (_, label, strength)) in PIECES.iter().enumerate() {
        let j = LABELS.iter().position(|l| l == label).unwrap();
        w[(i + 5) * LABELS.len() + j] = *strength;
    }
    let w = Tensor::from_vec(w, (VOCAB, LABELS.len()), &Device::Cpu).unwrap();
    move |h: &Tensor| Ok(h.broadcast_matmul(&w)?)
}

fn scheme() -> LabelScheme {
    LabelScheme::new(LABELS).unwrap()
}

fn options<'a>(window: usize, stride: usize, batch_size: usize) -> NerOptions<'a> {
    NerOptions {
        window: Some(window),
        stride,
        batch_size,
        ..NerOptions::default()
    }
}

/// Deterministic pseudo-random words of [`single_words`].
pub(crate) fn random_words(n: usize, seed: u64) -> Vec<&'static str> {
    random_words_of(&single_words(), n, seed)
}

fn random_words_of(words: &[&'static str], n: usize, seed: u64) -> Vec<&'static str> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            words[(x >> 33) as usize % words.len()]
        })
        .collect()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

fn assert_same_entities(a: &[Entity], b: &[Entity]) {
    assert_eq!(a.len(), b.len(), "{a:?}\n{b:?}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            (x.start, x.end, &x.kind, &x.text),
            (y.start, y.end, &y.kind, &y.text)
        );
        assert!((x.score.unwrap() - y.score.unwrap()).abs() <= 1e-4);
    }
}

fn assert_texts_are_slices(text: &str, entities: &[Entity]) {
    let ct = CharText::new(text);
    for e in entities {
        assert_eq!(ct.slice(e.start, e.end), Some(e.text.as_str()), "{e:?}");
    }
}

#[test]
fn lexicon_entities_are_exact_original_slices() {
    let dir = tempfile::tempdir().unwrap();
    let enc = tokenizer(dir.path());
    let labels = scheme();
    let text = "قال فلاديميرُ بوتين في باكـو\u{A0}إن وأرمينيا «روسيا» لا تزال للاتحاد الأوروبي، \
                والقاهرة. ﻻتفيا رويترز بوتين أرمينيا";
    let model = Lexicon { poison: None };
    let ner = NerModel {
        tokenizer: &enc,
        encoder: &model,
        head: lexicon_head(),
        labels: &labels,
        device: &Device::Cpu,
    };
    let opts = NerOptions {
        aggregation: Aggregation::Max,
        ..options(8, 3, 4)
    };
    let got = tag_ner(&[text], &ner, &opts)
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    let want = [
        ("فلاديميرُ بوتين", "PER"),
        ("باكـو", "LOC"),
        ("أرمينيا", "LOC"), // وأرمينيا: أرمينيا stands alone at the end
        ("روسيا", "LOC"),
        ("لاتحاد الأوروبي", "ORG"),
        ("القاهرة", "LOC"),
        ("ﻻتفيا", "LOC"),
        ("بوتين", "PER"), // an I-PER alone starts an entity; رويترز (MISC) is dropped
        ("أرمينيا", "LOC"),
    ];
    let chars: Vec<char> = text.chars().collect();
    let mut from = 0;
    let mut expected = Vec::new();
    for (needle, kind) in want {
        let n: Vec<char> = needle.chars().collect();
        let start = (from..chars.len())
            .find(|&i| chars[i..].starts_with(&n))
            .unwrap();
        expected.push((start, start + n.len(), needle.to_string(), kind.to_string()));
        from = start + n.len();
    }
    let got_t: Vec<_> = got
        .iter()
        .map(|e| (e.start, e.end, e.text.clone(), e.kind.clone()))
        .collect();
    assert_eq!(got_t, expected);
    assert_texts_are_slices(text, &got);
    assert!(got.iter().all(|e| e.score.unwrap() > 0.99));

    // Without the proclitic rule the model's spans are kept.
    let keep = NerOptions {
        proclitics: Proclitics {
            strip: false,
            ..Proclitics::default()
        },
        ..opts.clone()
    };
    let kept = tag_ner(&[text], &ner, &keep)
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    let texts: Vec<&str> = kept.iter().map(|e| e.text.as_str()).collect();
    assert!(texts.contains(&"وأرمينيا") && texts.contains(&"للاتحاد الأوروبي"));
    assert_texts_are_slices(text, &kept);
}

#[test]
fn one_failing_document_does_not_sink_the_others_and_bad_settings_fail_all() {
    let dir = tempfile::tempdir().unwrap();
    let enc = tokenizer(dir.path());
    let labels = scheme();
    let poison = enc.encode("رويترز").unwrap().tokens[0].id;
    let model = Lexicon {
        poison: Some(poison),
    };
    let ner = NerModel {
        tokenizer: &enc,
        encoder: &model,
        head: lexicon_head(),
        labels: &labels,
        device: &Device::Cpu,
    };
    let docs = ["قال بوتين", "رويترز في موسكو", "", "باكو"];
    let out = tag_ner(&docs, &ner, &options(8, 2, 8)).unwrap();
    assert_eq!(out[0].as_ref().unwrap()[0].text, "بوتين");
    assert!(matches!(out[1], Err(InferError::Candle(_))));
    assert!(out[2].as_ref().unwrap().is_empty());
    assert_eq!(out[3].as_ref().unwrap()[0].text, "باكو");

    let model = Lexicon { poison: None };
    let ner = NerModel {
        encoder: &model,
        ..ner
    };
    let err = |o: NerOptions<'_>| tag_ner(&docs, &ner, &o).unwrap_err();
    assert!(matches!(
        err(options(511, 2, 8)),
        InferError::WindowTooLong {
            window: 511,
            specials: 2,
            max_positions: 512
        }
    ));
    assert!(matches!(err(options(8, 8, 8)), InferError::Tokenizer(_)));
    assert!(matches!(err(options(8, 2, 0)), InferError::ZeroBatchSize));
    // No window given: as many tokens as the positions hold.
    let auto = NerOptions {
        window: None,
        ..options(0, 2, 8)
    };
    assert_eq!(tag_ner(&docs, &ner, &auto).unwrap().len(), 4);
}

#[test]
fn a_batch_gives_what_each_document_gives_alone() {
    let dir = tempfile::tempdir().unwrap();
    let enc = tokenizer(dir.path());
    let labels = scheme();
    let (bert, head) = tiny_bert(32);
    let ner = NerModel {
        tokenizer: &enc,
        encoder: &bert,
        head: |h: &Tensor| Ok(head.forward(h)?),
        labels: &labels,
        device: &Device::Cpu,
    };
    let texts: Vec<String> = [3, 40, 0, 17, 100, 5]
        .iter()
        .enumerate()
        .map(|(i, &n)| random_words(n, i as u64).join(" "))
        .collect();
    let docs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let opts = options(16, 8, 4);
    let batch: Vec<DocLogits> = ner_logits(&docs, &ner, &opts)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut windows_seen = 0;
    for (i, doc) in docs.iter().enumerate() {
        let alone = ner_logits(&[doc], &ner, &opts)
            .unwrap()
            .pop()
            .unwrap()
            .unwrap();
        assert_eq!(alone.encoded, batch[i].encoded);
        let d = max_diff(&alone.logits, &batch[i].logits);
        assert!(d <= 1e-4, "document {i}: logits differ by {d}");
        windows_seen += windows(alone.logits.len(), 16, 8).unwrap().len();
        for (aggregation, decoding) in [
            (Aggregation::First, Decoding::Argmax),
            (Aggregation::Average, Decoding::Viterbi),
        ] {
            let o = NerOptions {
                aggregation,
                decoding,
                ..opts.clone()
            };
            let a = decode_entities(doc, &alone, &labels, enc.normalizer(), &o).unwrap();
            let b = decode_entities(doc, &batch[i], &labels, enc.normalizer(), &o).unwrap();
            assert_same_entities(&a, &b);
            assert_texts_are_slices(doc, &a);
        }
    }
    assert!(
        windows_seen > docs.len(),
        "several documents need several windows"
    );
    let tagged = tag_ner(&docs, &ner, &opts).unwrap();
    let total: usize = tagged.iter().map(|r| r.as_ref().unwrap().len()).sum();
    assert!(total > 0, "a random head tags something");
}

/// A 40-token passage alone (windows 0..16, 8..24, 16..32, 24..40) and in
/// the middle of a 136-token document at token 48 (windows at every 8th
/// token). A passage token's logits can only equal when the long document's
/// window that counts it lies inside the passage: then it is the same
/// window of the same tokens at the same positions. Those are tokens
/// 4..36; the long document counts tokens 0..4 and 36..40 in windows that
/// reach outside the passage, where the context differs.
#[test]
fn window_interior_tokens_match_the_same_text_alone() {
    let dir = tempfile::tempdir().unwrap();
    let enc = tokenizer(dir.path());
    let labels = scheme();
    let (bert, head) = tiny_bert(18);
    let ner = NerModel {
        tokenizer: &enc,
        encoder: &bert,
        head: |h: &Tensor| Ok(head.forward(h)?),
        labels: &labels,
        device: &Device::Cpu,
    };
    let passage = random_words(40, 7);
    let mut long = random_words(48, 8);
    long.extend(&passage);
    long.extend(random_words(48, 9));
    let (short_text, long_text) = (passage.join(" "), long.join(" "));
    let opts = options(16, 8, 3);
    let out = ner_logits(&[&short_text, &long_text], &ner, &opts).unwrap();
    let [short, long] = [&out[0], &out[1]].map(|r| r.as_ref().unwrap());
    assert_eq!(
        (short.logits.len(), long.logits.len()),
        (40, 136),
        "one token a word"
    );
    let p = 48;
    let (sw, lw) = (windows(40, 16, 8).unwrap(), windows(136, 16, 8).unwrap());
    let counting = |ws: &[arabtag_tokenizer::Window], t: usize| {
        ws.iter().find(|w| w.counted.contains(&t)).unwrap().clone()
    };
    let mut comparable = Vec::new();
    for i in 0..40 {
        let l = counting(&lw, p + i);
        let s = counting(&sw, i);
        if l.tokens.start < p || l.tokens.end > p + 40 {
            let d = max_diff(&long.logits[p + i..=p + i], &short.logits[i..=i]);
            assert!(d > 1e-3, "token {i}: other context, yet the same logits");
            continue;
        }
        assert_eq!(
            (l.tokens.start - p, l.tokens.end - p),
            (s.tokens.start, s.tokens.end)
        );
        let d = max_diff(&long.logits[p + i..=p + i], &short.logits[i..=i]);
        assert!(d <= 1e-4, "token {i}: {d}");
        comparable.push(i);
    }
    assert_eq!(comparable, (4..36).collect::<Vec<_>>());
}

#[test]
fn a_twenty_thousand_word_document_is_tagged_whole() {
    let dir = tempfile::tempdir().unwrap();
    let enc = tokenizer(dir.path());
    let labels = scheme();
    // Words the lexicon model tags O or B-X, clitic-free: each tagged word
    // is an entity of its own.
    let label = |w: &str| {
        let (_, label, _) = PIECES
            .iter()
            .find(|(p, _, _)| p.strip_prefix('▁') == Some(w))?;
        Some(*label)
    };
    let pool: Vec<&str> = single_words()
        .into_iter()
        .filter(|w| *w != "والقاهرة" && label(w).is_some_and(|l| !l.starts_with("I-")))
        .collect();
    let words = random_words_of(&pool, 20_000, 42);
    let text = words
        .chunks(25)
        .map(|line| line.join(" "))
        .collect::<Vec<_>>()
        .join(". ");
    let opts = options(60, 10, 128);

    // A real transformer: every token gets a row, every word a score.
    let (bert, head) = tiny_bert(62);
    let ner = NerModel {
        tokenizer: &enc,
        encoder: &bert,
        head: |h: &Tensor| Ok(head.forward(h)?),
        labels: &labels,
        device: &Device::Cpu,
    };
    let doc = ner_logits(&[&text], &ner, &opts)
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    assert!(doc.encoded.words.len() >= 20_000);
    assert_eq!(doc.logits.len(), doc.encoded.tokens.len());
    assert!(doc.logits.iter().flatten().all(|x| x.is_finite()));
    let scores = aggregate(
        &doc.encoded.tokens,
        &doc.logits,
        doc.encoded.words.len(),
        opts.aggregation,
    )
    .unwrap();
    assert!(scores.iter().all(Option::is_some), "every word reached");
    let found = decode_entities(&text, &doc, &labels, enc.normalizer(), &opts).unwrap();
    assert_texts_are_slices(&text, &found);
    let len = text.chars().count();
    assert!(
        found.iter().any(|e| e.end > len - len / 100),
        "entities up to the end"
    );

    // The lexicon model: every entity word of the text, the last one included.
    let model = Lexicon { poison: None };
    let ner = NerModel {
        tokenizer: &enc,
        encoder: &model,
        head: lexicon_head(),
        labels: &labels,
        device: &Device::Cpu,
    };
    let found = tag_ner(&[&text], &ner, &opts)
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    let map = LabelMap::standard();
    let kind = |w: &str| map.get(label(w)?.strip_prefix("B-")?).map(str::to_string);
    let want: Vec<(&str, String)> = words.iter().filter_map(|w| Some((*w, kind(w)?))).collect();
    let got: Vec<(&str, String)> = found
        .iter()
        .map(|e| (e.text.as_str(), e.kind.clone()))
        .collect();
    assert!(want.len() > 5_000, "{}", want.len());
    let first_diff = got.iter().zip(&want).position(|(g, w)| g != w);
    assert_eq!(first_diff, None);
    assert_eq!(got.len(), want.len());
    assert_texts_are_slices(&text, &found);
    let last = words.iter().rposition(|w| kind(w).is_some()).unwrap();
    assert_eq!(found.last().unwrap().end, doc.encoded.words[last].end);
}
