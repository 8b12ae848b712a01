//! Integration tests of arabtag-tokenizer (one binary).

#![allow(clippy::unwrap_used)]

mod common;
mod encode_e5;
mod encode_tiny;
mod normalize_props;
mod segments;
mod windows;
