//! airlock-ui: the terminal conventions both binaries follow.
//!
//! * logs go to stderr through `tracing`, filtered by `AIRLOCK_LOG` or `-v`;
//! * progress bars are drawn only when stderr is a terminal, so piped output stays clean;
//! * data goes to stdout, as text or (`--json`) as one JSON document;
//! * exit codes are the constants in [`exit`].

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Documented exit codes (see docs/cli.md).
pub mod exit {
    /// Everything asked for was done and checked.
    pub const OK: u8 = 0;
    /// The operation failed: bad input, verification failure, I/O error.
    pub const FAILED: u8 = 1;
    /// Command-line usage error (clap's convention).
    pub const USAGE: u8 = 2;
}

/// Sets up `tracing` to stderr. `verbose` raises the default level; `AIRLOCK_LOG` overrides.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(airlock_core::env::AIRLOCK_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// A byte progress bar on stderr, or nothing when stderr is not a terminal.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn bytes(label: &str, total: u64) -> Self {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        pb.set_message(label.to_string());
        pb.enable_steady_tick(Duration::from_millis(200));
        Bar(Some(pb))
    }

    /// Sets the total once it is known (a bar made with total 0).
    pub fn set_total(&self, total: u64) {
        if let Some(pb) = &self.0 {
            pb.set_length(total);
        }
    }

    pub fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

impl airlock_bundle::Progress for Bar {
    fn advance(&self, n: u64) {
        if let Some(pb) = &self.0 {
            pb.inc(n);
        }
    }
}

/// Parses `4GiB`, `700MB`, `650M`, `1048576`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a size such as 4GiB or 700MB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        "t" | "tib" => 1 << 40,
        "tb" => 1_000_000_000_000,
        u => {
            return Err(format!(
                "{s:?}: unknown unit {u:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ))
        }
    };
    let v = num * mult as f64;
    if !(v.is_finite() && v >= 1.0 && v < u64::MAX as f64) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(v as u64)
}

/// A lifetime: `never`, or seconds from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    After(i64),
}

/// Parses `never` or a duration such as `30d`.
pub fn parse_expiry(s: &str) -> Result<Expiry, String> {
    if s == "never" {
        Ok(Expiry::Never)
    } else {
        parse_duration(s).map(Expiry::After)
    }
}

/// Parses `30d`, `12h`, `1y` into seconds.
///
/// Durations beyond [`MAX_DURATION_SECS`] (100 years) are refused: an expiry or a clock skew
/// that long is a typing mistake, and time arithmetic on it could overflow.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{s:?}: {e} (examples: 30d, 12h, 52w)"))?;
    i64::try_from(d.as_secs())
        .ok()
        .filter(|&secs| secs <= MAX_DURATION_SECS)
        .ok_or_else(|| format!("{s:?}: longer than 100 years"))
}

/// The longest duration [`parse_duration`] accepts: 100 years of 365.25 days.
pub const MAX_DURATION_SECS: i64 = 100 * 31_557_600;

/// Parses a duration into milliseconds (`500ms`, `2s`).
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let d =
        humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (examples: 500ms, 2s)"))?;
    u64::try_from(d.as_millis())
        .ok()
        .filter(|&ms| ms <= MAX_DURATION_SECS as u64 * 1000)
        .ok_or_else(|| format!("{s:?}: longer than 100 years"))
}

/// Reports a command's failure: `error: …` with its causes on stderr, and with `--json` also
/// `{"error": "…", "causes": ["…"]}` on stdout, so a machine reading stdout sees the failure
/// in the same form as a result. The caller exits with [`exit::FAILED`].
pub fn report_error(e: &anyhow::Error, json: bool) {
    eprintln!("error: {e:#}");
    if json {
        let causes: Vec<String> = e.chain().skip(1).map(|c| c.to_string()).collect();
        let doc = serde_json::json!({"error": e.to_string(), "causes": causes});
        println!("{doc}");
    }
}

/// Is this error (anywhere in its chain) a closed stdout pipe? `airlock ... | head` is success.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}

/// Human-readable byte count.
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("700MB").unwrap(), 700_000_000);
        assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
        assert!(parse_size("4 parsecs").is_err());
        assert_eq!(parse_duration("30d").unwrap(), 30 * 86_400);
    }

    #[test]
    fn absurd_durations_are_errors_not_overflows() {
        let e = parse_duration("9999999999y").unwrap_err();
        assert!(e.contains("longer than 100 years"), "{e}");
        assert!(parse_duration("99999999999999999999y").is_err());
        assert!(parse_duration_ms("9999999999y").is_err());
        assert_eq!(parse_duration("100y").unwrap(), MAX_DURATION_SECS);
    }
}
