//! Container image references as operators write them: `HOST[:PORT]/REPO[:TAG][@sha256:HEX]`.
//!
//! [`ImageRef`] is parsed once, from the input manifest, and is what the registry client, the
//! sync records and `airlock pack` agree on. A reference without a host means Docker Hub
//! (`ubuntu:24.04` is `docker.io/library/ubuntu:24.04`), as every container tool reads it.
//!
//! ```
//! use airlock_core::reference::ImageRef;
//! let r: ImageRef = "127.0.0.1:5000/acme/hello:v1".parse().unwrap();
//! assert_eq!(r.registry, "127.0.0.1:5000");
//! assert_eq!(r.repository, "acme/hello");
//! assert_eq!(r.reference(), "v1");
//! ```

use std::fmt;
use std::str::FromStr;

use crate::Digest;

/// The registry a reference without a host names.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's distribution API actually lives.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed, validated image reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    /// `HOST[:PORT]` as written (Docker Hub: `docker.io`).
    pub registry: String,
    /// Repository path inside the registry (`acme/hello`, `library/ubuntu`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// The tag or digest to ask the registry for (`latest` when neither was written).
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// `HOST[:PORT]` to connect to (Docker Hub's API host for `docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// `HOST/REPO`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository with another tag (for `sha256-<hex>.sig` and the like).
    pub fn with_tag(&self, tag: &str) -> ImageRef {
        ImageRef {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        }
    }

    /// The same repository pinned to a digest.
    pub fn with_digest(&self, d: Digest) -> ImageRef {
        ImageRef {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(d),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.strip_prefix("docker://").unwrap_or(s);
        crate::manifest::check_reference(s)?;
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d.parse::<Digest>().map_err(|e| e.to_string())?)),
            None => (s, None),
        };
        let (name, tag) = match name.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t.to_string())),
            _ => (name, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((h, rest)) if h.contains('.') || h.contains(':') || h == "localhost" => {
                (h.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() {
            return Err(format!("{s:?}: no repository"));
        }
        if repository
            .bytes()
            .any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-/".contains(&c)))
        {
            return Err(format!(
                "{s:?}: repository {repository:?} must be lowercase [a-z0-9._-/]"
            ));
        }
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_tags_and_digests() {
        let r: ImageRef = "localhost:5000/a/b:v1".parse().unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost:5000", "a/b")
        );
        assert_eq!(r.tag.as_deref(), Some("v1"));
        let r: ImageRef = "ubuntu".parse().unwrap();
        assert_eq!(r.to_string(), "docker.io/library/ubuntu");
        assert_eq!(r.reference(), "latest");
        assert_eq!(r.api_host(), DOCKER_HUB_API);
        let d = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let r: ImageRef = format!("reg.example/x/y:t@{d}").parse().unwrap();
        assert_eq!(r.reference(), d);
        assert_eq!(r.to_string(), format!("reg.example/x/y:t@{d}"));
        for bad in ["reg.example/X/y:t", "a/../b", "reg.example/x:", ""] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad}");
        }
    }
}
