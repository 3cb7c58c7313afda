//! End-to-end tests of the airlock binaries against real peers. One test binary (fast links);
//! one module per area.

mod bad_input;
mod debs;
mod foundation;
mod hsm;
mod import;
mod import_bad;
mod lading;
mod models;
mod node;
mod operations;
mod report;
mod report_records;
mod sbom;
mod scale;
mod scan;
mod scan_import;
mod scan_yara;
mod serve;
mod serve_hostile;
mod split_blobs;
mod sync;
mod vuln;
mod vulndb_sync;
