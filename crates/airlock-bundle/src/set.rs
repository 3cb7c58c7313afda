//! Several volumes of one bundle, given in any order: open and authenticate each, and refuse
//! volumes of another bundle or the same volume twice.

use std::collections::BTreeSet;
use std::path::PathBuf;

use airlock_core::time::UnixTime;
use airlock_core::Digest;
use airlock_trust::TrustRoot;

use crate::reader::{Authenticated, Volume};
use crate::BundleError;

pub struct Member {
    pub volume: Volume,
    pub auth: Authenticated,
}

/// Per given path: the authenticated volume or why it was refused. The first volume that
/// authenticates fixes the bundle identity for the rest.
pub fn authenticate_all(
    paths: &[PathBuf],
    root: &TrustRoot,
    now: UnixTime,
    skew: i64,
) -> Vec<(PathBuf, Result<Member, BundleError>)> {
    let mut bundle: Option<Digest> = None;
    let mut numbers = BTreeSet::new();
    paths
        .iter()
        .map(|p| {
            let r = Volume::open(p).and_then(|volume| {
                let auth = volume.authenticate(root, now, skew)?;
                if let Some(b) = bundle {
                    if b != auth.bundle_id {
                        return Err(BundleError::MixedBundles {
                            volume: p.clone(),
                            expected: b,
                            found: auth.bundle_id,
                        });
                    }
                }
                bundle = Some(auth.bundle_id);
                if !numbers.insert(volume.label.volume) {
                    return Err(BundleError::DuplicateVolume {
                        volume: p.clone(),
                        number: volume.label.volume,
                    });
                }
                Ok(Member { volume, auth })
            });
            (p.clone(), r)
        })
        .collect()
}
