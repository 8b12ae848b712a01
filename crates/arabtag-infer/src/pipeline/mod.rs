//! Documents to records.
//!
//! NER, one small step per module:
//!
//! 1. [`batch`]: each document's tokens are cut into overlapping windows
//!    (never truncated), the windows of all documents are sorted by length
//!    and batched with their special tokens and attention masks, the
//!    encoder and a token head give logits, and each token keeps the row of
//!    the window where it is most central. Results come back in input order.
//! 2. [`aggregate`]: subword rows to word rows (`first`, `max`, `average` as
//!    Hugging Face defines them).
//! 3. [`bio`]: word labels to entities as word ranges, by argmax with BIO
//!    repair or by a BIO-constrained Viterbi decode.
//! 4. [`spans`]: word ranges to character spans of the original text,
//!    trimmed of punctuation, with the proclitic rule.
//! 5. [`labels`]: model types to PER/ORG/LOC/DATE; entity records whose
//!    text is the original slice.
//! 6. [`runner`]: the steps together for any encoder and head
//!    ([`tag_ner`]), with per-document results.
//!
//! Stance: [`stance_scorer`] scores each segment's labels (prototypes, a
//! trained head or NLI, one scorer); [`stance`] segments a document,
//! decides each segment's labels from the scores and thresholds, and unions
//! them per document.
//!
//! [`work`] counts the encoder rows planned and done, for progress within
//! a long document.

pub mod aggregate;
pub mod batch;
pub mod bio;
pub mod dates;
pub mod labels;
mod punct;
pub mod runner;
pub mod shared;
pub mod spans;
pub mod stance;
pub mod stance_scorer;
pub mod work;

pub use aggregate::Aggregation;
pub use batch::{Batching, TokenRows, WindowRef, WindowedDoc, Wrapping, token_logits};
pub use bio::{Decoding, LabelScheme, WordEntity};
pub use dates::{find_dates, merge_dates};
pub use labels::LabelMap;
pub use punct::is_punctuation;
pub use runner::{
    DEFAULT_BATCH_SIZE, DEFAULT_STRIDE, DocLogits, NerContext, NerModel, NerOptions,
    decode_entities, ner_logits, plan_windows, tag_ner,
};
pub use spans::{Evidence, NameForms, Proclitics};
pub use stance::{StanceScores, document_labels, label_segments, tag_stance};
pub use work::Work;
