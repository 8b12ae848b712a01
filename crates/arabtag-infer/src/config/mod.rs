//! The model config: what a user edits to swap the transformer.
