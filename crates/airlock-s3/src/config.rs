//! Where the store is (`s3://BUCKET/PREFIX` at an endpoint) and the keys that sign requests.

use std::path::PathBuf;

/// An S3-compatible store: a bucket and a key prefix at an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `http(s)://host:port`, without a trailing slash.
    pub endpoint: String,
    pub bucket: String,
    /// Key prefix under which the store lives; may be empty; no leading or trailing slash.
    pub prefix: String,
    /// Signing region (`us-east-1` unless told).
    pub region: String,
    /// Path-style URLs (`endpoint/bucket/key`) rather than virtual-host style
    /// (`bucket.endpoint/key`); most self-hosted servers need path style.
    pub path_style: bool,
}

impl S3Config {
    /// The store `s3://BUCKET/PREFIX` (the prefix may be absent) at `endpoint`.
    pub fn parse_url(
        store: &str,
        endpoint: &str,
        region: Option<&str>,
    ) -> Result<S3Config, String> {
        let rest = store
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{store}: not an s3://BUCKET/PREFIX URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            return Err(format!(
                "{store}: bucket name {bucket:?} is not a valid S3 bucket name \
                 (3 to 63 lowercase letters, digits, '-' and '.')"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix
            .split('/')
            .any(|s| (s.is_empty() && !prefix.is_empty()) || s == "." || s == "..")
        {
            return Err(format!(
                "{store}: the prefix must not have empty, '.' or '..' segments"
            ));
        }
        let endpoint = endpoint.trim_end_matches('/');
        let parsed = url::Url::parse(endpoint).map_err(|e| format!("{endpoint}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "{endpoint}: the endpoint must be http(s)://HOST[:PORT]"
            ));
        }
        if parsed.path() != "/" || parsed.query().is_some() {
            return Err(format!(
                "{endpoint}: the endpoint must not have a path or query"
            ));
        }
        let region = region.unwrap_or("us-east-1");
        if region.is_empty() {
            return Err("the S3 region must not be empty".into());
        }
        Ok(S3Config {
            endpoint: endpoint.to_string(),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            region: region.to_string(),
            path_style: true,
        })
    }

    /// `s3://bucket/prefix` (no trailing slash).
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// The full object key of `rel`, a key relative to the prefix.
    pub fn key(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{}", self.prefix, rel)
        }
    }
}

/// Access keys for SigV4 signing.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    /// The keys from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`), else from the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`
    /// or `~/.aws/credentials`), profile `AWS_PROFILE` or `default`. Keys are never taken from
    /// the command line, where other users could read them.
    pub fn from_env() -> Result<Credentials, String> {
        Self::from_sources(
            |k| std::env::var(k).ok(),
            std::env::var_os("HOME").map(PathBuf::from),
        )
    }

    /// [`Self::from_env`] with the environment given as a function and the home directory.
    pub fn from_sources(
        env: impl Fn(&str) -> Option<String>,
        home: Option<PathBuf>,
    ) -> Result<Credentials, String> {
        let var = |k: &str| env(k).filter(|v| !v.is_empty());
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key), Some(secret_key)) => {
                return Ok(Credentials {
                    access_key,
                    secret_key,
                    session_token: var("AWS_SESSION_TOKEN"),
                })
            }
            (Some(_), None) | (None, Some(_)) => return Err(
                "S3 credentials: only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set"
                    .into(),
            ),
            (None, None) => {}
        }
        let file = match var("AWS_SHARED_CREDENTIALS_FILE") {
            Some(f) => PathBuf::from(f),
            None => match home {
                Some(h) => h.join(".aws").join("credentials"),
                None => {
                    return Err(
                        "no S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                                are not set, and there is no HOME for ~/.aws/credentials"
                            .into(),
                    )
                }
            },
        };
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let looked = format!(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and profile [{profile}] of {}",
            file.display()
        );
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => return Err(format!("no S3 credentials: {looked}: {e}")),
        };
        parse_credentials_file(&text, &profile)
            .map_err(|why| format!("no S3 credentials: {looked}: {why}"))
    }
}

/// The keys of `profile` in the INI text of a shared credentials file.
fn parse_credentials_file(text: &str, profile: &str) -> Result<Credentials, String> {
    let (mut found, mut inside) = (false, false);
    let (mut key, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            let name = section
                .strip_prefix("profile ")
                .map(str::trim)
                .unwrap_or(section);
            inside = name == profile;
            found |= inside;
            continue;
        }
        if !inside {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "aws_access_key_id" => key = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    if !found {
        return Err("no such profile".into());
    }
    match (key, secret) {
        (Some(access_key), Some(secret_key))
            if !access_key.is_empty() && !secret_key.is_empty() =>
        {
            Ok(Credentials {
                access_key,
                secret_key,
                session_token: token.filter(|t| !t.is_empty()),
            })
        }
        _ => Err("the profile lacks aws_access_key_id or aws_secret_access_key".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_urls() {
        let c = S3Config::parse_url("s3://my-bucket/a/b/", "http://127.0.0.1:9000/", None).unwrap();
        assert_eq!(c.bucket, "my-bucket");
        assert_eq!(c.prefix, "a/b");
        assert_eq!(c.endpoint, "http://127.0.0.1:9000");
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.key("blobs/sha256/x"), "a/b/blobs/sha256/x");
        assert_eq!(c.url(), "s3://my-bucket/a/b");
        let c = S3Config::parse_url("s3://bkt", "https://s3.example", Some("eu-west-1")).unwrap();
        assert_eq!((c.prefix.as_str(), c.region.as_str()), ("", "eu-west-1"));
        assert_eq!(c.key("k"), "k");
        for bad in [
            "s3://",
            "http://b/p",
            "s3://B/p",
            "s3://b",
            "s3://bkt/a//b",
            "s3://bkt/../x",
        ] {
            assert!(S3Config::parse_url(bad, "http://h", None).is_err(), "{bad}");
        }
        assert!(S3Config::parse_url("s3://bkt", "ftp://h", None).is_err());
        assert!(S3Config::parse_url("s3://bkt", "http://h/path", None).is_err());
    }
}
