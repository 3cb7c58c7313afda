//! CVSS base scores computed from vectors.
//!
//! A record's severity text can disagree with its vector, so airlock computes the base score
//! from the vector itself, per the FIRST specifications of CVSS v3.0 and v3.1: the base
//! metrics' weights, the scope-changed weights of Privileges Required, and the Roundup
//! function. v3.1's Roundup is the integer-based one of the v3.1 specification (Appendix A),
//! which is immune to floating-point error; v3.0's is the plain "smallest one-decimal number
//! not below the input", applied after rounding away floating-point noise in the same way.
//!
//! Vectors are untrusted input: every metric must be one the version defines, with a value it
//! defines, at most once; all base metrics must be present. Temporal and environmental
//! metrics are validated the same way but do not change the base score. CVSS v4.0 vectors
//! are refused with an error ("CVSS v4 vectors are not scored"); callers fall back to the
//! severity the record states.

/// The longest vector accepted.
pub const MAX_LEN: usize = 512;

/// A computed base score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The base score, 0.0 to 10.0 with one decimal.
    pub score: f64,
    /// The qualitative severity of the score ([`severity`]).
    pub severity: &'static str,
    /// The CVSS version of the vector (`"3.0"`, `"3.1"`).
    pub version: &'static str,
}

/// The CVSS qualitative severity rating of a score: `none` (0.0), `low` (0.1-3.9), `medium`
/// (4.0-6.9), `high` (7.0-8.9), `critical` (9.0-10.0).
pub fn severity(score: f64) -> &'static str {
    if score >= 9.0 {
        "critical"
    } else if score >= 7.0 {
        "high"
    } else if score >= 4.0 {
        "medium"
    } else if score > 0.0 {
        "low"
    } else {
        "none"
    }
}

/// Metrics of CVSS v3.x: name, allowed values, whether it is a base metric.
const V3_METRICS: &[(&str, &str, bool)] = &[
    ("AV", "NALP", true),
    ("AC", "LH", true),
    ("PR", "NLH", true),
    ("UI", "NR", true),
    ("S", "UC", true),
    ("C", "HLN", true),
    ("I", "HLN", true),
    ("A", "HLN", true),
    ("E", "XUPFH", false),
    ("RL", "XOTWU", false),
    ("RC", "XURC", false),
    ("CR", "XLMH", false),
    ("IR", "XLMH", false),
    ("AR", "XLMH", false),
    ("MAV", "XNALP", false),
    ("MAC", "XLH", false),
    ("MPR", "XNLH", false),
    ("MUI", "XNR", false),
    ("MS", "XUC", false),
    ("MC", "XNLH", false),
    ("MI", "XNLH", false),
    ("MA", "XNLH", false),
];

/// The base score of a CVSS vector (`CVSS:3.1/AV:N/...`).
pub fn base_score(vector: &str) -> Result<f64, String> {
    score(vector).map(|s| s.score)
}

/// The base score of a CVSS vector with its severity and version.
pub fn score(vector: &str) -> Result<Score, String> {
    if vector.len() > MAX_LEN {
        return Err(format!(
            "CVSS vector is {} bytes, more than {MAX_LEN}",
            vector.len()
        ));
    }
    let (version, metrics) = if let Some(rest) = vector.strip_prefix("CVSS:3.1/") {
        ("3.1", rest)
    } else if let Some(rest) = vector.strip_prefix("CVSS:3.0/") {
        ("3.0", rest)
    } else if vector.starts_with("CVSS:4.0/") {
        return Err("CVSS v4 vectors are not scored".to_string());
    } else {
        return Err(format!(
            "not a CVSS v3.0 or v3.1 vector: {:?}",
            vector.chars().take(32).collect::<String>()
        ));
    };
    let mut values: [Option<u8>; V3_METRICS.len()] = [None; V3_METRICS.len()];
    for part in metrics.split('/') {
        let Some((name, value)) = part.split_once(':') else {
            return Err(format!("CVSS metric without a value: {part:?}"));
        };
        let Some(i) = V3_METRICS.iter().position(|(n, _, _)| *n == name) else {
            return Err(format!("unknown CVSS v{version} metric {name:?}"));
        };
        let allowed = V3_METRICS[i].1;
        if value.len() != 1 || !allowed.contains(value) {
            return Err(format!("CVSS metric {name} has invalid value {value:?}"));
        }
        if values[i].is_some() {
            return Err(format!("CVSS metric {name} given more than once"));
        }
        values[i] = Some(value.as_bytes()[0]);
    }
    let mut base = [0u8; 8];
    for (i, (name, _, is_base)) in V3_METRICS.iter().enumerate() {
        if *is_base {
            base[i] = values[i].ok_or_else(|| format!("CVSS base metric {name} is missing"))?;
        }
    }
    let [av, ac, pr, ui, s, c, i, a] = base;
    let changed = s == b'C';
    let av = match av {
        b'N' => 0.85,
        b'A' => 0.62,
        b'L' => 0.55,
        _ => 0.2,
    };
    let ac = if ac == b'L' { 0.77 } else { 0.44 };
    let pr = match (pr, changed) {
        (b'N', _) => 0.85,
        (b'L', false) => 0.62,
        (b'L', true) => 0.68,
        (_, false) => 0.27,
        (_, true) => 0.5,
    };
    let ui = if ui == b'N' { 0.85 } else { 0.62 };
    let cia = |v: u8| match v {
        b'H' => 0.56,
        b'L' => 0.22,
        _ => 0.0,
    };
    let iss = 1.0 - (1.0 - cia(c)) * (1.0 - cia(i)) * (1.0 - cia(a));
    let impact = if changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02f64).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    let score = if impact <= 0.0 {
        0.0
    } else if changed {
        roundup((1.08 * (impact + exploitability)).min(10.0))
    } else {
        roundup((impact + exploitability).min(10.0))
    };
    Ok(Score {
        score,
        severity: severity(score),
        version,
    })
}

/// The smallest number with one decimal that is not below `x`, computed on `x` rounded to
/// five decimals (CVSS v3.1 Appendix A), so that floating-point noise such as
/// `4.000000000000001` does not round up to 4.1.
fn roundup(x: f64) -> f64 {
    let n = (x * 100_000.0).round() as i64;
    if n % 10_000 == 0 {
        n as f64 / 100_000.0
    } else {
        ((n / 10_000) + 1) as f64 / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_scores() {
        for (v, want) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
            (
                "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N/E:P/RL:O/RC:C/MAV:L",
                5.9,
            ),
            ("CVSS:3.1/A:H/I:H/C:H/S:U/UI:N/PR:N/AC:L/AV:N", 9.8),
        ] {
            assert_eq!(base_score(v), Ok(want), "{v}");
        }
        let s = score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").unwrap();
        assert_eq!((s.severity, s.version), ("critical", "3.1"));
    }

    #[test]
    fn severity_scale() {
        assert_eq!(severity(0.0), "none");
        assert_eq!(severity(0.1), "low");
        assert_eq!(severity(3.9), "low");
        assert_eq!(severity(4.0), "medium");
        assert_eq!(severity(6.9), "medium");
        assert_eq!(severity(7.0), "high");
        assert_eq!(severity(8.9), "high");
        assert_eq!(severity(9.0), "critical");
        assert_eq!(severity(10.0), "critical");
    }

    #[test]
    fn roundup_ignores_float_noise() {
        assert_eq!(roundup(4.000000000000001), 4.0);
        assert_eq!(roundup(4.02), 4.1);
        assert_eq!(roundup(4.0), 4.0);
    }

    #[test]
    fn bad_vectors_name_the_problem() {
        let err = |v: &str| base_score(v).unwrap_err();
        let base = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
        assert!(err(&format!("{base}/AV:L")).contains("AV given more than once"));
        assert!(
            err("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H").contains("base metric A is missing")
        );
        assert!(err(&format!("{base}/XX:Y")).contains("unknown CVSS v3.1 metric \"XX\""));
        assert!(err(&format!("{base}/E:Q")).contains("metric E has invalid value"));
        assert!(err("CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").contains("AV"));
        assert!(err(&format!("{base}/")).contains("without a value"));
        assert!(err(&format!("{base}/MAV")).contains("without a value"));
        assert!(err("AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").contains("not a CVSS"));
        assert!(err("CVSS:2.0/AV:N").contains("not a CVSS"));
        assert!(err("garbage \u{0}\u{ff}").contains("not a CVSS"));
        assert!(err(&format!("{base}{}", "/E:X".repeat(200))).contains("more than"));
        assert_eq!(
            err("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"),
            "CVSS v4 vectors are not scored"
        );
        assert!(err("").contains("not a CVSS"));
    }
}
