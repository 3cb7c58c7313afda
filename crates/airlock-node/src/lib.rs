//! airlock-node: what turns an appliance into a k3s GPU serving node.
//!
//! * [`preflight`] — reads the machine (sysfs, procfs, statvfs, through a root path so tests use
//!   fixture trees) and says, check by check, whether it can become a GPU node and what to fix.
//! * [`render`] — writes every file the node needs under a root directory, from a node profile
//!   of a signed bundle and the content the appliance serves, deterministically.
//! * [`k8s`] — the Kubernetes manifests and k3s configuration of a profile.
//! * [`archive`] — single-platform OCI image archives containerd imports, and the zstd window
//!   limit of k3s's image loader.
//! * [`install`] — runs the install steps in the order that works, stopping at the first
//!   failure with what to do, and resuming from where it stopped.
//!
//! Nothing here downloads: every byte written comes from the appliance's store, verified.

pub mod archive;
pub mod install;
pub mod k8s;
pub mod preflight;
pub mod render;

/// Errors of node rendering and installation.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Something the profile or the store does not provide, or a value that cannot be used.
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl NodeError {
    /// Wraps an IO error with what was being done (`write /etc/rancher/k3s/config.yaml`).
    pub fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> NodeError {
        let what = what.to_string();
        move |source| NodeError::Io { what, source }
    }
}
