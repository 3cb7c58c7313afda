//! CISA's Known Exploited Vulnerabilities catalog (`known_exploited_vulnerabilities.json`)
//! read as untrusted input.
//!
//! An advisory is known-exploited when its id or one of its aliases is a CVE the catalog lists;
//! the import policy refuses those however they are waived (`policies/cve-ceiling.rego`). So the
//! catalog is read strictly: at most [`MAX_KEV`] bytes and [`MAX_ENTRIES`] entries, every
//! `cveID` a well-formed CVE identifier and every `dateAdded` a `YYYY-MM-DD` date, `count`
//! equal to the entries listed. A fault refuses the whole catalog, naming the entry: a
//! half-read list would silently let exploited vulnerabilities through.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Largest catalog read (the published one is under 2 MiB).
pub const MAX_KEV: u64 = 64 << 20;
/// Most entries (the published one lists under 2,000).
pub const MAX_ENTRIES: usize = 200_000;

/// The parts of the catalog airlock keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kev {
    pub catalog_version: String,
    pub date_released: String,
    /// CVE id → the date CISA added it.
    pub cves: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    catalog_version: Option<String>,
    #[serde(default)]
    date_released: Option<String>,
    #[serde(default)]
    count: Option<u64>,
    vulnerabilities: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    #[serde(rename = "cveID")]
    cve_id: String,
    date_added: String,
}

/// `CVE-YYYY-NNNN…` (four to nineteen digits after the year).
pub fn is_cve(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, n)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && (4..=19).contains(&n.len())
        && n.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn short(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// Parses the catalog.
pub fn parse(bytes: &[u8]) -> Result<Kev, String> {
    if bytes.len() as u64 > MAX_KEV {
        return Err(format!("known-exploited catalog over {MAX_KEV} bytes"));
    }
    let raw: Raw = serde_json::from_slice(bytes)
        .map_err(|e| format!("not a known-exploited vulnerabilities catalog: {e}"))?;
    if raw.vulnerabilities.len() > MAX_ENTRIES {
        return Err(format!("more than {MAX_ENTRIES} known-exploited entries"));
    }
    if let Some(c) = raw.count {
        if c != raw.vulnerabilities.len() as u64 {
            return Err(format!(
                "the catalog says count {c} but lists {} vulnerabilities",
                raw.vulnerabilities.len()
            ));
        }
    }
    let mut cves = BTreeMap::new();
    for (i, v) in raw.vulnerabilities.into_iter().enumerate() {
        if !is_cve(&v.cve_id) {
            return Err(format!(
                "entry {i}: cveID {:?} is not a CVE identifier",
                short(&v.cve_id)
            ));
        }
        if !is_date(&v.date_added) {
            return Err(format!(
                "entry {i} ({}): dateAdded {:?} is not a YYYY-MM-DD date",
                v.cve_id,
                short(&v.date_added)
            ));
        }
        cves.insert(v.cve_id, v.date_added);
    }
    let token = |s: Option<String>| s.map(|s| short(&s)).unwrap_or_default();
    Ok(Kev {
        catalog_version: token(raw.catalog_version),
        date_released: token(raw.date_released),
        cves,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEV: &str = r#"{"title": "CISA Catalog of Known Exploited Vulnerabilities",
      "catalogVersion": "2026.11.30", "dateReleased": "2026-11-30T17:00:00.000Z", "count": 2,
      "vulnerabilities": [
        {"cveID": "CVE-2021-44228", "vendorProject": "Apache", "product": "Log4j2",
         "vulnerabilityName": "Apache Log4j2 Remote Code Execution Vulnerability",
         "dateAdded": "2021-12-10", "shortDescription": "…", "requiredAction": "…",
         "dueDate": "2021-12-24", "knownRansomwareCampaignUse": "Known", "notes": "", "cwes": ["CWE-20"]},
        {"cveID": "CVE-2099-0001", "dateAdded": "2026-11-30"}]}"#;

    #[test]
    fn the_catalog_is_read() {
        let k = parse(KEV.as_bytes()).unwrap();
        assert_eq!(k.catalog_version, "2026.11.30");
        assert_eq!(k.cves["CVE-2021-44228"], "2021-12-10");
        assert_eq!(k.cves.len(), 2);
    }

    #[test]
    fn a_bad_entry_refuses_the_catalog() {
        for (bad, want) in [
            (KEV.replace("CVE-2099-0001", "CVE-99-1"), "not a CVE"),
            (KEV.replace("\"2026-11-30\"}", "\"soon\"}"), "dateAdded"),
            (KEV.replace("\"count\": 2", "\"count\": 3"), "count 3"),
            (KEV.replace("\"cveID\": \"CVE-2099-0001\", ", ""), "cveID"),
            ("[]".to_string(), "not a known-exploited"),
        ] {
            let e = parse(bad.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        assert!(is_cve("CVE-2024-1234567") && !is_cve("GHSA-1") && !is_cve("CVE-2024-12"));
    }
}
