//! Environment variables airlock reads. Kept in one place so `--help` and the docs agree.

/// Connected-side content store (`airlock sync` writes it, `airlock pack` reads it).
pub const AIRLOCK_STORE: &str = "AIRLOCK_STORE";
/// Disconnected-side data directory (`airlockd --data`).
pub const AIRLOCK_DATA: &str = "AIRLOCK_DATA";
/// `tracing` filter for both binaries, e.g. `airlock=debug`.
pub const AIRLOCK_LOG: &str = "AIRLOCK_LOG";
/// Directories of operator YARA rules (`*.yar`, `*.yara`) for `airlock scan` and
/// `airlock pack`, separated by `:`.
pub const AIRLOCK_YARA_RULES: &str = "AIRLOCK_YARA_RULES";
/// The PKCS#11 module (shared library) that `pkcs11:` key URIs use when they carry no
/// `module-path=`; the default is SoftHSM2's `/usr/lib/softhsm/libsofthsm2.so`.
pub const AIRLOCK_PKCS11_MODULE: &str = "AIRLOCK_PKCS11_MODULE";
