//! Training: NER heads over frozen encoder features, fine-tuning the top
//! encoder layers with a token head, and the stance head. Only the
//! `arabtag` command line depends on this crate; the tagger
//! (`arabtag-infer`) reads what it writes (the head file format is
//! `arabtag_infer::models::head_file`).
//!
//! - [`align`]: CoNLL sentences (words + IOB2 tags) encoded with the
//!   [`SubwordEncoder`](arabtag_tokenizer::SubwordEncoder); each word's label
//!   goes to its FIRST subtoken, the other subtokens carry none.
//! - [`features`]: the first-subtoken hidden states of chosen layers,
//!   concatenated, over windows (long sentences are windowed, never
//!   truncated), and their cache file (f16, keyed by the model, the layers
//!   and the data).
//! - [`head`]: a softmax linear head trained on those features with AdamW,
//!   deterministic for a seed, checkpointed and resumable; the head file
//!   format ([`head::LayerHeadMeta`]) a tagger loads.
//! - [`finetune`]: the top K encoder layers and a token head trained
//!   together, checkpointed per epoch, saved as a head file with the layers.
//! - [`stance`]: the logistic stance head on segment embeddings.
//! - [`optim`]: AdamW and the seeded generator.

pub mod align;
mod error;
pub mod features;
mod files;
pub mod finetune;
pub mod head;
mod layer_cache;
pub mod ner_run;
pub mod optim;
pub mod stance;
pub mod stance_run;

pub use align::{AlignedSentence, TaggedSentence, align_sentence, label_set};
pub use error::TrainError;
pub use features::{CacheKey, FeatureSpec, Features, extract_features, load_cache, save_cache};
pub use files::{RunObserver, read_json, sha256_file, write_json};
pub use head::{EpochReport, HEAD_FORMAT, HeadTrainer, LayerHeadMeta, TrainOptions, TrainState};
pub use ner_run::{NerRun, run_ner};
