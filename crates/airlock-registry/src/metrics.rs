//! Prometheus metrics, kept in a `prometheus-client` [`Registry`]: requests by route group,
//! method and status; response body bytes; a latency histogram per route group. Every label
//! value comes from a fixed set ([`GROUPS`], [`method_label`], the status codes the server
//! sends), so clients cannot grow a family by inventing methods.
//!
//! The registry is encoded in the Prometheus text format 0.0.4 ([`prometheus_text::encode`],
//! served as [`CONTENT_TYPE`]), which writes what Go clients write: counters' `# HELP` and
//! `# TYPE` lines name the `_total` series, and integral bucket bounds read `le="1"`. The
//! crate's OpenMetrics encoder (`text::encode`) would write `le="1.0"`, a different series to
//! Prometheus 2, and `# TYPE` lines without `_total`.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Histogram bucket bounds in seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    group: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS.iter().copied())
}

/// All metrics of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    bytes: Family<GroupLabels, Counter>,
    latency: Family<GroupLabels, Histogram, fn() -> Histogram>,
    pub reloads: Counter,
    pub in_flight: Gauge,
    /// Connections refused with `503` beyond the connection cap.
    pub busy: Counter,
    /// Credential checks performed (not answered from a connection's cache).
    pub auth_checks: Counter,
    /// Set from the snapshot on each scrape; the lock keeps a concurrent scrape from
    /// encoding another snapshot's value.
    apt_refused: Mutex<Gauge>,
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
        let requests = Family::<RequestLabels, Counter>::default();
        let bytes = Family::<GroupLabels, Counter>::default();
        let latency: Family<GroupLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        // Every group's histogram is exposed from the start, zero until its first request.
        for group in GROUPS {
            drop(latency.get_or_create(&GroupLabels { group }));
        }
        let reloads = Counter::default();
        let in_flight = Gauge::default();
        let busy = Counter::default();
        let auth_checks = Counter::default();
        let apt_refused = Gauge::default();
        // The registry appends `_total` to counter names and a full stop to help texts.
        let mut registry = Registry::default();
        registry.register(
            "airlock_http_requests",
            "HTTP requests answered",
            requests.clone(),
        );
        registry.register(
            "airlock_http_response_bytes",
            "Response body bytes announced",
            bytes.clone(),
        );
        registry.register(
            "airlock_http_request_duration_seconds",
            "Time to response headers",
            latency.clone(),
        );
        registry.register(
            "airlock_http_in_flight",
            "Requests being answered",
            in_flight.clone(),
        );
        registry.register(
            "airlock_catalog_reloads",
            "Snapshots rebuilt after catalog changes",
            reloads.clone(),
        );
        registry.register(
            "airlock_http_busy",
            "Connections refused with 503 beyond the connection cap",
            busy.clone(),
        );
        registry.register(
            "airlock_auth_checks",
            "Credential checks performed (not answered from a connection's cache)",
            auth_checks.clone(),
        );
        registry.register(
            "airlock_apt_refused_packages",
            ".deb files left out of the apt repository (bad control file)",
            apt_refused.clone(),
        );
        Metrics {
            registry,
            requests,
            bytes,
            latency,
            reloads,
            in_flight,
            busy,
            auth_checks,
            apt_refused: Mutex::new(apt_refused),
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
        self.requests
            .get_or_create(&RequestLabels {
                group,
                method: method_label(method),
                status,
            })
            .inc();
        self.bytes
            .get_or_create(&GroupLabels { group })
            .inc_by(bytes);
        if GROUPS.contains(&group) {
            self.latency
                .get_or_create(&GroupLabels { group })
                .observe(d.as_secs_f64());
        }
    }

    /// The text exposition; `apt_refused`: `.deb` files the current apt repository left out.
    pub fn render(&self, apt_refused: usize) -> String {
        let gauge = self.apt_refused.lock().expect("metrics lock");
        gauge.set(i64::try_from(apt_refused).unwrap_or(i64::MAX));
        let mut s = String::new();
        prometheus_text::encode(&mut s, &self.registry).expect("writing to a String");
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
        let text = m.render(0);
        let series = text
            .lines()
            .filter(|l| l.starts_with("airlock_http_requests_total{"))
            .count();
        assert_eq!(series, 2, "{text}");
        assert!(
            text.contains("method=\"other\",status=\"405\"} 100"),
            "{text}"
        );
    }

    #[test]
    fn exposition_keeps_names_help_types_and_bucket_labels() {
        let m = Metrics::default();
        m.record("oci", &http::Method::GET, 200, 10, Duration::from_millis(3));
        m.record("apt", &http::Method::HEAD, 404, 0, Duration::from_secs(60));
        m.reloads.inc();
        m.in_flight.inc();
        m.busy.inc();
        m.auth_checks.inc();
        let text = m.render(2);
        for line in [
            "# HELP airlock_http_requests_total HTTP requests answered.",
            "# TYPE airlock_http_requests_total counter",
            "airlock_http_requests_total{group=\"oci\",method=\"GET\",status=\"200\"} 1",
            "airlock_http_requests_total{group=\"apt\",method=\"HEAD\",status=\"404\"} 1",
            "# HELP airlock_http_response_bytes_total Response body bytes announced.",
            "# TYPE airlock_http_response_bytes_total counter",
            "airlock_http_response_bytes_total{group=\"oci\"} 10",
            "airlock_http_response_bytes_total{group=\"apt\"} 0",
            "# HELP airlock_http_request_duration_seconds Time to response headers.",
            "# TYPE airlock_http_request_duration_seconds histogram",
            "airlock_http_request_duration_seconds_bucket{group=\"oci\",le=\"0.0005\"} 0",
            "airlock_http_request_duration_seconds_bucket{group=\"oci\",le=\"0.0025\"} 0",
            "airlock_http_request_duration_seconds_bucket{group=\"oci\",le=\"0.005\"} 1",
            "airlock_http_request_duration_seconds_bucket{group=\"oci\",le=\"1\"} 1",
            "airlock_http_request_duration_seconds_bucket{group=\"oci\",le=\"30\"} 1",
            "airlock_http_request_duration_seconds_bucket{group=\"oci\",le=\"+Inf\"} 1",
            "airlock_http_request_duration_seconds_count{group=\"oci\"} 1",
            "airlock_http_request_duration_seconds_bucket{group=\"apt\",le=\"30\"} 0",
            "airlock_http_request_duration_seconds_bucket{group=\"apt\",le=\"+Inf\"} 1",
            "airlock_http_request_duration_seconds_sum{group=\"apt\"} 60.0",
            "airlock_http_request_duration_seconds_bucket{group=\"hf\",le=\"+Inf\"} 0",
            "airlock_http_request_duration_seconds_count{group=\"metrics\"} 0",
            "airlock_http_request_duration_seconds_count{group=\"other\"} 0",
            "# HELP airlock_http_in_flight Requests being answered.",
            "# TYPE airlock_http_in_flight gauge",
            "airlock_http_in_flight 1",
            "# HELP airlock_catalog_reloads_total Snapshots rebuilt after catalog changes.",
            "# TYPE airlock_catalog_reloads_total counter",
            "airlock_catalog_reloads_total 1",
            "# HELP airlock_http_busy_total Connections refused with 503 beyond the connection cap.",
            "# TYPE airlock_http_busy_total counter",
            "airlock_http_busy_total 1",
            "# HELP airlock_auth_checks_total Credential checks performed (not answered from a connection's cache).",
            "# TYPE airlock_auth_checks_total counter",
            "airlock_auth_checks_total 1",
            "# HELP airlock_apt_refused_packages .deb files left out of the apt repository (bad control file).",
            "# TYPE airlock_apt_refused_packages gauge",
            "airlock_apt_refused_packages 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing in\n{text}");
        }
        assert_eq!(
            text.lines()
                .filter(
                    |l| l.starts_with("airlock_http_request_duration_seconds_bucket{group=\"oci\"")
                )
                .count(),
            BUCKETS.len() + 1,
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        assert!(text.ends_with('\n'), "{text}");
    }
}
