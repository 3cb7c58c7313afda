//! CVSS base scores computed from vectors.
//!
//! A record's severity text can disagree with its vector, so airlock computes the base score
//! from the vector itself, per the FIRST specifications of CVSS v3.0 and v3.1: the base
//! metrics' weights, the scope-changed weights of Privileges Required, and the Roundup
//! function. v3.1's Roundup is the integer-based one of the v3.1 specification (Appendix A),
//! which is immune to floating-point error; v3.0's is the plain "smallest one-decimal number
//! not below the input", applied after rounding away floating-point noise in the same way.
//!
//! CVSS v4.0 base scores (CVSS-B) follow the v4.0 specification's method: the vector's
//! macro vector (equivalence classes EQ1 to EQ6) selects a score from the specification's
//! table of macro vector scores, which is then lowered by the vector's mean proportional
//! distance from the highest-severity vectors of its macro vector, towards the scores of the
//! next lower macro vectors, and rounded half up to one decimal.
//!
//! Vectors are untrusted input: every metric must be one the version defines, with a value it
//! defines, at most once; all base metrics must be present. Threat, temporal, environmental
//! and supplemental metrics are validated the same way but do not change the base score.

/// The longest vector accepted.
pub const MAX_LEN: usize = 512;

/// A computed base score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The base score, 0.0 to 10.0 with one decimal.
    pub score: f64,
    /// The qualitative severity of the score ([`severity`]).
    pub severity: &'static str,
    /// The CVSS version of the vector (`"3.0"`, `"3.1"`, `"4.0"`).
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
    } else if let Some(rest) = vector.strip_prefix("CVSS:4.0/") {
        let score = v4::base_score(rest)?;
        return Ok(Score {
            score,
            severity: severity(score),
            version: "4.0",
        });
    } else {
        return Err(format!(
            "not a CVSS v3.0, v3.1 or v4.0 vector: {:?}",
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

/// CVSS v4.0 base scores.
mod v4 {
    /// Metrics of CVSS v4.0: name, allowed values, whether it is a base metric.
    const METRICS: &[(&str, &[&str], bool)] = &[
        ("AV", &["N", "A", "L", "P"], true),
        ("AC", &["L", "H"], true),
        ("AT", &["N", "P"], true),
        ("PR", &["N", "L", "H"], true),
        ("UI", &["N", "P", "A"], true),
        ("VC", &["H", "L", "N"], true),
        ("VI", &["H", "L", "N"], true),
        ("VA", &["H", "L", "N"], true),
        ("SC", &["H", "L", "N"], true),
        ("SI", &["H", "L", "N"], true),
        ("SA", &["H", "L", "N"], true),
        ("E", &["X", "A", "P", "U"], false),
        ("CR", &["X", "H", "M", "L"], false),
        ("IR", &["X", "H", "M", "L"], false),
        ("AR", &["X", "H", "M", "L"], false),
        ("MAV", &["X", "N", "A", "L", "P"], false),
        ("MAC", &["X", "L", "H"], false),
        ("MAT", &["X", "N", "P"], false),
        ("MPR", &["X", "N", "L", "H"], false),
        ("MUI", &["X", "N", "P", "A"], false),
        ("MVC", &["X", "H", "L", "N"], false),
        ("MVI", &["X", "H", "L", "N"], false),
        ("MVA", &["X", "H", "L", "N"], false),
        ("MSC", &["X", "H", "L", "N"], false),
        ("MSI", &["X", "S", "H", "L", "N"], false),
        ("MSA", &["X", "S", "H", "L", "N"], false),
        ("S", &["X", "N", "P"], false),
        ("AU", &["X", "N", "Y"], false),
        ("R", &["X", "A", "U", "I"], false),
        ("V", &["X", "D", "C"], false),
        ("RE", &["X", "L", "M", "H"], false),
        ("U", &["X", "Clear", "Green", "Amber", "Red"], false),
    ];

    /// No macro vector with these equivalence classes.
    const NA: u8 = u8::MAX;

    /// The specification's score of each macro vector, in tenths, indexed by EQ1 (0-2),
    /// EQ2 (0-1), EQ3 (0-2), EQ4 (0-2), EQ5 (0-2), EQ6 (0-1), the last varying fastest.
    #[rustfmt::skip]
    const LOOKUP: [u8; 324] = [
    100, 99, 98, 95, 95, 92, 100, 96, 93, 87, 91, 81, 93, 90, 89, 80, 81, 68,
    98, 95, 95, 92, 90, 84, 93, 92, 89, 81, 81, 65, 88, 80, 78, 70, 69, 48,
    NA, 92, NA, 82, NA, 72, NA, 79, NA, 69, NA, 50, NA, 69, NA, 55, NA, 27,
    99, 97, 95, 92, 92, 85, 95, 91, 90, 83, 84, 71, 92, 81, 82, 71, 72, 53,
    95, 93, 92, 85, 85, 73, 92, 82, 80, 72, 70, 59, 84, 70, 71, 52, 50, 30,
    NA, 86, NA, 75, NA, 52, NA, 71, NA, 52, NA, 29, NA, 63, NA, 29, NA, 17,
    98, 95, 94, 87, 91, 81, 94, 89, 86, 74, 77, 64, 87, 75, 74, 63, 63, 49,
    94, 89, 88, 77, 76, 67, 86, 76, 74, 58, 59, 50, 72, 57, 57, 52, 52, 25,
    NA, 83, NA, 70, NA, 54, NA, 65, NA, 58, NA, 26, NA, 53, NA, 21, NA, 13,
    95, 90, 88, 76, 76, 70, 90, 77, 75, 62, 61, 53, 77, 66, 68, 59, 52, 30,
    89, 78, 76, 67, 62, 58, 74, 59, 57, 57, 47, 23, 61, 52, 57, 29, 24, 16,
    NA, 71, NA, 59, NA, 30, NA, 58, NA, 26, NA, 15, NA, 23, NA, 13, NA, 6,
    93, 87, 86, 72, 75, 58, 86, 74, 74, 61, 56, 34, 70, 54, 52, 40, 40, 22,
    85, 75, 74, 55, 62, 51, 72, 57, 55, 41, 46, 19, 53, 36, 34, 19, 19, 8,
    NA, 64, NA, 51, NA, 20, NA, 47, NA, 21, NA, 11, NA, 24, NA, 9, NA, 4,
    88, 75, 73, 53, 60, 50, 73, 55, 59, 40, 41, 20, 54, 43, 45, 22, 20, 11,
    75, 55, 58, 45, 40, 21, 61, 51, 48, 18, 20, 9, 46, 18, 17, 7, 8, 2,
    NA, 53, NA, 24, NA, 14, NA, 24, NA, 12, NA, 5, NA, 10, NA, 3, NA, 1,
    ];

    fn lookup(eq: [usize; 6]) -> Option<f64> {
        let limits = [3, 2, 3, 3, 3, 2];
        let mut i = 0;
        for (v, n) in eq.iter().zip(limits) {
            if *v >= n {
                return None;
            }
            i = i * n + v;
        }
        let v = LOOKUP[i];
        (v != NA).then(|| f64::from(v) / 10.0)
    }

    /// The highest-severity vectors of each equivalence class, as (metric, value) lists;
    /// EQ3 is indexed by EQ3 then EQ6.
    type Max = &'static [&'static [(&'static str, &'static str)]];
    const MAX_EQ1: [Max; 3] = [
        &[&[("AV", "N"), ("PR", "N"), ("UI", "N")]],
        &[
            &[("AV", "A"), ("PR", "N"), ("UI", "N")],
            &[("AV", "N"), ("PR", "L"), ("UI", "N")],
            &[("AV", "N"), ("PR", "N"), ("UI", "P")],
        ],
        &[
            &[("AV", "P"), ("PR", "N"), ("UI", "N")],
            &[("AV", "A"), ("PR", "L"), ("UI", "P")],
        ],
    ];
    const MAX_EQ2: [Max; 2] = [
        &[&[("AC", "L"), ("AT", "N")]],
        &[&[("AC", "H"), ("AT", "N")], &[("AC", "L"), ("AT", "P")]],
    ];
    const MAX_EQ3: [[Max; 2]; 3] = [
        [
            &[&[
                ("VC", "H"),
                ("VI", "H"),
                ("VA", "H"),
                ("CR", "H"),
                ("IR", "H"),
                ("AR", "H"),
            ]],
            &[
                &[
                    ("VC", "H"),
                    ("VI", "H"),
                    ("VA", "L"),
                    ("CR", "M"),
                    ("IR", "M"),
                    ("AR", "H"),
                ],
                &[
                    ("VC", "H"),
                    ("VI", "H"),
                    ("VA", "H"),
                    ("CR", "M"),
                    ("IR", "M"),
                    ("AR", "M"),
                ],
            ],
        ],
        [
            &[
                &[
                    ("VC", "L"),
                    ("VI", "H"),
                    ("VA", "H"),
                    ("CR", "H"),
                    ("IR", "H"),
                    ("AR", "H"),
                ],
                &[
                    ("VC", "H"),
                    ("VI", "L"),
                    ("VA", "H"),
                    ("CR", "H"),
                    ("IR", "H"),
                    ("AR", "H"),
                ],
            ],
            &[
                &[
                    ("VC", "L"),
                    ("VI", "H"),
                    ("VA", "L"),
                    ("CR", "H"),
                    ("IR", "M"),
                    ("AR", "H"),
                ],
                &[
                    ("VC", "L"),
                    ("VI", "H"),
                    ("VA", "H"),
                    ("CR", "H"),
                    ("IR", "M"),
                    ("AR", "M"),
                ],
                &[
                    ("VC", "H"),
                    ("VI", "L"),
                    ("VA", "H"),
                    ("CR", "M"),
                    ("IR", "H"),
                    ("AR", "M"),
                ],
                &[
                    ("VC", "H"),
                    ("VI", "L"),
                    ("VA", "L"),
                    ("CR", "M"),
                    ("IR", "H"),
                    ("AR", "H"),
                ],
                &[
                    ("VC", "L"),
                    ("VI", "L"),
                    ("VA", "H"),
                    ("CR", "H"),
                    ("IR", "H"),
                    ("AR", "M"),
                ],
            ],
        ],
        [
            &[],
            &[&[
                ("VC", "L"),
                ("VI", "L"),
                ("VA", "L"),
                ("CR", "H"),
                ("IR", "H"),
                ("AR", "H"),
            ]],
        ],
    ];
    const MAX_EQ4: [Max; 3] = [
        &[&[("SC", "H"), ("SI", "S"), ("SA", "S")]],
        &[&[("SC", "H"), ("SI", "H"), ("SA", "H")]],
        &[&[("SC", "L"), ("SI", "L"), ("SA", "L")]],
    ];
    /// How many 0.1 steps of severity each equivalence class spans; EQ3 by EQ3 then EQ6.
    const DEPTH_EQ1: [u32; 3] = [1, 4, 5];
    const DEPTH_EQ2: [u32; 2] = [1, 2];
    const DEPTH_EQ3: [[u32; 2]; 3] = [[7, 6], [8, 8], [0, 10]];
    const DEPTH_EQ4: [u32; 3] = [6, 5, 4];

    /// A metric value's severity level (lower is more severe), as the specification sets
    /// them for measuring distances between vectors.
    fn level(metric: &str, value: &str) -> f64 {
        match (metric, value) {
            ("AV", "N") | ("PR", "N") | ("UI", "N") | ("AC", "L") | ("AT", "N") => 0.0,
            ("AV", "A") | ("PR", "L") | ("UI", "P") | ("AC", "H") | ("AT", "P") => 0.1,
            ("AV", "L") | ("PR", "H") | ("UI", "A") => 0.2,
            ("AV", "P") => 0.3,
            ("VC" | "VI" | "VA" | "CR" | "IR" | "AR", "H") => 0.0,
            ("VC" | "VI" | "VA", "L") | ("CR" | "IR" | "AR", "M") => 0.1,
            ("VC" | "VI" | "VA", "N") | ("CR" | "IR" | "AR", "L") => 0.2,
            ("SI" | "SA", "S") => 0.0,
            ("SC" | "SI" | "SA", "H") => 0.1,
            ("SC" | "SI" | "SA", "L") => 0.2,
            _ => 0.3,
        }
    }

    /// The base score of the metrics after `CVSS:4.0/`.
    pub(super) fn base_score(metrics: &str) -> Result<f64, String> {
        let mut values: Vec<Option<&str>> = vec![None; METRICS.len()];
        for part in metrics.split('/') {
            let Some((name, value)) = part.split_once(':') else {
                return Err(format!("CVSS metric without a value: {part:?}"));
            };
            let Some(i) = METRICS.iter().position(|(n, _, _)| *n == name) else {
                return Err(format!("unknown CVSS v4.0 metric {name:?}"));
            };
            if !METRICS[i].1.contains(&value) {
                return Err(format!("CVSS metric {name} has invalid value {value:?}"));
            }
            if values[i].is_some() {
                return Err(format!("CVSS metric {name} given more than once"));
            }
            values[i] = Some(value);
        }
        for (i, (name, _, is_base)) in METRICS.iter().enumerate() {
            if *is_base && values[i].is_none() {
                return Err(format!("CVSS base metric {name} is missing"));
            }
        }
        // The base score: threat and environmental metrics at their defaults (E:A, CR, IR
        // and AR High, nothing modified).
        let m = |name: &str| -> &str {
            match name {
                "CR" | "IR" | "AR" => "H",
                _ => METRICS
                    .iter()
                    .position(|(n, _, _)| *n == name)
                    .and_then(|i| values[i])
                    .unwrap_or("N"),
            }
        };
        if ["VC", "VI", "VA", "SC", "SI", "SA"]
            .iter()
            .all(|n| m(n) == "N")
        {
            return Ok(0.0);
        }
        let (av, pr, ui) = (m("AV"), m("PR"), m("UI"));
        let eq1 = if av == "N" && pr == "N" && ui == "N" {
            0
        } else if (av == "N" || pr == "N" || ui == "N") && av != "P" {
            1
        } else {
            2
        };
        let eq2 = if m("AC") == "L" && m("AT") == "N" {
            0
        } else {
            1
        };
        let (vc, vi, va) = (m("VC"), m("VI"), m("VA"));
        let eq3 = if vc == "H" && vi == "H" {
            0
        } else if vc == "H" || vi == "H" || va == "H" {
            1
        } else {
            2
        };
        let eq4 = if m("SC") == "H" || m("SI") == "H" || m("SA") == "H" {
            1
        } else {
            2
        };
        let eq5 = 0;
        // CR, IR and AR are High in a base score.
        let eq6 = if vc == "H" || vi == "H" || va == "H" {
            0
        } else {
            1
        };
        let eq = [eq1, eq2, eq3, eq4, eq5, eq6];
        let value = lookup(eq).ok_or("CVSS v4.0 vector has no macro vector score")?;
        let lower = |i: usize| {
            let mut e = eq;
            e[i] += 1;
            lookup(e)
        };
        let lower_eq3eq6 = match (eq3, eq6) {
            (0, 0) => match (lower(5), lower(2)) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            (1, 0) => lower(5),
            (2, _) => None,
            _ => lower(2),
        };
        let lowers = [lower(0), lower(1), lower_eq3eq6, lower(3), lower(4)];

        // The first highest-severity vector of the macro vector that the vector does not
        // exceed in any metric; the distances are measured from it.
        let names = [
            "AV", "PR", "UI", "AC", "AT", "VC", "VI", "VA", "SC", "SI", "SA", "CR", "IR", "AR",
        ];
        let mut distance = [0.0f64; 14];
        'search: for a in MAX_EQ1[eq1] {
            for b in MAX_EQ2[eq2] {
                for c in MAX_EQ3[eq3][eq6] {
                    for d in MAX_EQ4[eq4] {
                        let max = |name: &str| {
                            [*a, *b, *c, *d]
                                .iter()
                                .flat_map(|l| l.iter())
                                .find(|(n, _)| *n == name)
                                .map_or("N", |(_, v)| *v)
                        };
                        for (k, name) in names.iter().enumerate() {
                            distance[k] = level(name, m(name)) - level(name, max(name));
                        }
                        if distance.iter().all(|d| *d >= 0.0) {
                            break 'search;
                        }
                    }
                }
            }
        }
        let d = |name: &str| distance[names.iter().position(|n| *n == name).unwrap_or(0)];
        let current = [
            d("AV") + d("PR") + d("UI"),
            d("AC") + d("AT"),
            d("VC") + d("VI") + d("VA") + d("CR") + d("IR") + d("AR"),
            d("SC") + d("SI") + d("SA"),
            0.0,
        ];
        let depth = [
            DEPTH_EQ1[eq1],
            DEPTH_EQ2[eq2],
            DEPTH_EQ3[eq3][eq6],
            DEPTH_EQ4[eq4],
            1,
        ];
        let mut n = 0;
        let mut sum = 0.0;
        for i in 0..5 {
            let Some(next) = lowers[i] else { continue };
            let available = value - next;
            if available >= 0.0 {
                n += 1;
                let percent = if i == 4 {
                    0.0
                } else {
                    current[i] / (f64::from(depth[i]) * 0.1)
                };
                sum += available * percent;
            }
        }
        let mean = if n == 0 { 0.0 } else { sum / f64::from(n) };
        let score = (value - mean).clamp(0.0, 10.0);
        // Half up to one decimal, with a margin for floating-point noise (8.6 - 7.15 is
        // 1.4499999999999993, which is 1.45 and rounds to 1.5).
        Ok(((score + 1e-6) * 10.0 + 0.5).floor() / 10.0)
    }
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
        for (v, want) in [
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                9.3,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N",
                0.0,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                8.5,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U/CR:L/U:Red",
                9.3,
            ),
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
        assert!(err("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N").contains("SA"));
        assert!(
            err("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/S:X/S:N")
                .contains("S given more than once")
        );
        assert!(
            err("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/U:Blue")
                .contains("U has invalid value")
        );
        assert!(err("").contains("not a CVSS"));
    }
}
