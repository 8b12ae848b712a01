//! The workspace's one integration-test binary: it runs the real `arabtag`
//! executable. One module per subcommand.

#![allow(clippy::unwrap_used)]

mod bench;
mod eval;
mod export;
mod models;
mod support;
mod tag;
mod train;
