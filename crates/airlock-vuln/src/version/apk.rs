//! The apk version order.

use std::cmp::Ordering;

/// `a` against `b`; `None` when either is not a valid version.
pub fn compare(_a: &str, _b: &str) -> Option<Ordering> {
    None
}
