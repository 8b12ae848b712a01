//! Transformer encoders on candle, their heads, and the tagging pipelines.
//!
//! - [`config`]: the model config (TOML) a user edits to swap models, its
//!   validation, and the resolution of its files (local hub-layout folder,
//!   hub repository at a pinned revision, or the e5 4-bit file).
//! - [`models`]: encoders (BERT, XLM-RoBERTa, DeBERTa-v2 from hub-layout
//!   files; the e5 `E5S1` file, 4-bit or dequantised), token and sequence
//!   classification heads, sentence embeddings.
//! - [`pipeline`]: documents to records — windows, batches, logits merged
//!   back, subwords aggregated to words, BIO decoded to character spans,
//!   proclitics, label maps; segment stance.
//! - [`loaded`]: a verified config loaded once ([`LoadedModel`]): tokenizer,
//!   encoder, the NER task's network, the stance scorer.
//! - [`tagger`]: a loaded model and its options ([`Tagger`]): documents to
//!   records.
//! - [`export`]: the loaded NER network written in the Hugging Face hub
//!   layout (`arabtag models export`).

pub mod config;
pub mod error;
pub mod export;
pub mod loaded;
pub mod models;
pub mod pipeline;
pub mod tagger;

pub use error::InferError;
pub use loaded::{LoadOptions, LoadedModel, Precision};
pub use tagger::{TagOptions, Tagged, Tagger};
