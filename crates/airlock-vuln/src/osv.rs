//! OSV records.
