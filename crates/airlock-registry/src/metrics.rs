//! Prometheus metrics in the text exposition format, kept with plain atomics and one small
//! mutex-protected map (no metrics crate): requests by route group, method and status;
//! response body bytes; a latency histogram per route group. Every label value comes from a
//! fixed set ([`GROUPS`], [`method_label`], the status codes the server sends), so clients
//! cannot grow the map by inventing methods.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket bounds in seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

struct Histogram {
    counts: Vec<AtomicU64>,
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: BUCKETS.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

/// All counters of one server.
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    bytes: Mutex<BTreeMap<&'static str, u64>>,
    latency: Vec<(&'static str, Histogram)>,
    pub reloads: AtomicU64,
    pub in_flight: AtomicU64,
    /// Connections refused with `503` beyond the connection cap.
    pub busy: AtomicU64,
    /// Credential checks performed (not answered from a connection's cache).
    pub auth_checks: AtomicU64,
}

/// The `method` label: `GET`, `HEAD`, or `other` for anything a client may send.
pub fn method_label(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        _ => "other",
    }
}

/// The route groups metrics are kept for.
pub const GROUPS: &[&str] = &["oci", "hf", "apt", "metrics", "other"];

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            bytes: Mutex::new(BTreeMap::new()),
            latency: GROUPS.iter().map(|g| (*g, Histogram::new())).collect(),
            reloads: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            auth_checks: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Records one finished request (`bytes`: the response body length announced).
    pub fn record(
        &self,
        group: &'static str,
        method: &http::Method,
        status: u16,
        bytes: u64,
        d: Duration,
    ) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((group, method_label(method), status))
            .or_default() += 1;
        *self
            .bytes
            .lock()
            .expect("metrics lock")
            .entry(group)
            .or_default() += bytes;
        if let Some((_, h)) = self.latency.iter().find(|(g, _)| *g == group) {
            let s = d.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    h.counts[i].fetch_add(1, Ordering::Relaxed);
                }
            }
            h.sum_us.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
            h.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The text exposition; `apt_refused`: `.deb` files the current apt repository left out.
    pub fn render(&self, apt_refused: usize) -> String {
        let mut s = String::new();
        s.push_str("# HELP airlock_http_requests_total HTTP requests answered.\n# TYPE airlock_http_requests_total counter\n");
        for ((g, m, st), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                s,
                "airlock_http_requests_total{{group=\"{g}\",method=\"{m}\",status=\"{st}\"}} {n}"
            );
        }
        s.push_str("# HELP airlock_http_response_bytes_total Response body bytes announced.\n# TYPE airlock_http_response_bytes_total counter\n");
        for (g, n) in self.bytes.lock().expect("metrics lock").iter() {
            let _ = writeln!(s, "airlock_http_response_bytes_total{{group=\"{g}\"}} {n}");
        }
        s.push_str("# HELP airlock_http_request_duration_seconds Time to response headers.\n# TYPE airlock_http_request_duration_seconds histogram\n");
        for (g, h) in &self.latency {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "airlock_http_request_duration_seconds_bucket{{group=\"{g}\",le=\"{b}\"}} {}",
                    h.counts[i].load(Ordering::Relaxed)
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                s,
                "airlock_http_request_duration_seconds_bucket{{group=\"{g}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                s,
                "airlock_http_request_duration_seconds_sum{{group=\"{g}\"}} {}",
                h.sum_us.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                s,
                "airlock_http_request_duration_seconds_count{{group=\"{g}\"}} {count}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP airlock_http_in_flight Requests being answered.\n# TYPE airlock_http_in_flight gauge\nairlock_http_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP airlock_catalog_reloads_total Snapshots rebuilt after catalog changes.\n# TYPE airlock_catalog_reloads_total counter\nairlock_catalog_reloads_total {}",
            self.reloads.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP airlock_http_busy_total Connections refused with 503 beyond the connection cap.\n# TYPE airlock_http_busy_total counter\nairlock_http_busy_total {}",
            self.busy.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP airlock_auth_checks_total Credential checks performed (not answered from a connection's cache).\n# TYPE airlock_auth_checks_total counter\nairlock_auth_checks_total {}",
            self.auth_checks.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP airlock_apt_refused_packages .deb files left out of the apt repository (bad control file).\n# TYPE airlock_apt_refused_packages gauge\nairlock_apt_refused_packages {apt_refused}"
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        let m = Metrics::default();
        for i in 0..100 {
            let method = http::Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
            m.record("oci", &method, 405, 0, Duration::ZERO);
        }
        m.record("oci", &http::Method::GET, 200, 0, Duration::ZERO);
        assert_eq!(m.requests.lock().unwrap().len(), 2);
        let text = m.render(0);
        assert!(
            text.contains("method=\"other\",status=\"405\"} 100"),
            "{text}"
        );
    }
}
