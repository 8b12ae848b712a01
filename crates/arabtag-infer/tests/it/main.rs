//! The crate's integration tests, one binary (one link of candle and the
//! crate): config parsing and resolution, the encoders and heads against
//! candle's and transformers' references, the pipelines on tiny models and,
//! where `make models` fetched them, on the real e5 files.

#![allow(clippy::unwrap_used)]

mod common;
mod config;
mod models;
mod models_e5;
mod models_heads;
mod pipeline;
mod pipeline_proclitics;
mod pipeline_shared;
mod pipeline_stance;
