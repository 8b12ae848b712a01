//! Documents to records.
