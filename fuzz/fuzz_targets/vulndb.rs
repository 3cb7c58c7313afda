//! The vulnerability data `airlock vulndb sync` downloads: `zip::members` (the strict export
//! reader: any fault refuses the archive, sizes and ratios bounded before inflating) with every
//! member through `osv::parse`, the same bytes as one OSV record, and `kev::parse` (CISA's
//! known-exploited catalog). What the catalog parser accepts holds only CVE identifiers; what
//! the zip reader hands over is within its bounds.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bounds = airlock_scan::zip::Bounds {
        max_entries: 1000,
        max_member: 1 << 20,
        max_total: 8 << 20,
        max_ratio: 200,
    };
    let mut total = 0u64;
    let r = airlock_scan::zip::members(&data, &bounds, |_, member| {
        assert!(member.len() as u64 <= bounds.max_member);
        total += member.len() as u64;
        let _ = airlock_vuln::osv::parse(member);
        Ok(())
    });
    if let Ok(w) = r {
        assert_eq!(w.inflated, total);
        assert!(total <= bounds.max_total);
    }
    let _ = airlock_vuln::osv::parse(data);
    if let Ok(k) = airlock_vuln::kev::parse(data) {
        assert!(k.cves.keys().all(|c| airlock_vuln::kev::is_cve(c)));
    }
});
