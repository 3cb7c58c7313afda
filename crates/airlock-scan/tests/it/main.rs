//! Integration tests of airlock-scan: the public API on hand-built files, and a stable-Rust
//! mutation fuzzer (the cargo-fuzz targets under `fuzz/` need nightly). The mutation test feeds
//! mutated seeds of every format to the whole scanner and checks it never panics and stays
//! within its time bound. `AIRLOCK_SCAN_FUZZ_ITERS` sets the iterations (default 3000).

use std::time::{Duration, Instant};

mod data_classes;

use airlock_scan::{scan_bytes, Limits, Severity};

/// A stored (uncompressed) zip written by hand, so tests need no zip crate.
fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut cd = Vec::new();
    for (name, data) in members {
        let off = out.len() as u32;
        let crc = crc32(data);
        let n = name.len() as u16;
        let len = data.len() as u32;
        out.extend_from_slice(b"PK\x03\x04");
        for v in [20u16, 0, 0, 0, 0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, len, len] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        cd.extend_from_slice(b"PK\x01\x02");
        for v in [20u16, 20, 0, 0, 0, 0] {
            cd.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, len, len] {
            cd.extend_from_slice(&v.to_le_bytes());
        }
        for v in [n, 0, 0, 0, 0] {
            cd.extend_from_slice(&v.to_le_bytes());
        }
        cd.extend_from_slice(&0u32.to_le_bytes());
        cd.extend_from_slice(&off.to_le_bytes());
        cd.extend_from_slice(name.as_bytes());
    }
    let cd_off = out.len() as u32;
    out.extend_from_slice(&cd);
    out.extend_from_slice(b"PK\x05\x06");
    for v in [0u16, 0, members.len() as u16, members.len() as u16] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_off.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn crc32(d: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in d {
        c ^= *b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn safetensors() -> Vec<u8> {
    let h = br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}"#;
    let mut v = (h.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(h);
    v.extend_from_slice(&[0u8; 11]);
    v
}

fn gguf() -> Vec<u8> {
    let s = |x: &str| {
        let mut v = (x.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(x.as_bytes());
        v
    };
    let mut v = b"GGUF".to_vec();
    v.extend_from_slice(&3u32.to_le_bytes());
    v.extend_from_slice(&1u64.to_le_bytes());
    v.extend_from_slice(&2u64.to_le_bytes());
    v.extend(s("general.architecture"));
    v.extend_from_slice(&8u32.to_le_bytes());
    v.extend(s("llama"));
    v.extend(s("tokenizer.chat_template"));
    v.extend_from_slice(&8u32.to_le_bytes());
    v.extend(s("{% for m in messages %}{{ m.content }}{% endfor %}"));
    v.extend(s("w"));
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&4u64.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes());
    while v.len() & 31 != 0 {
        v.push(0);
    }
    v.extend_from_slice(&[0u8; 16]);
    v
}

const EVIL_P4: &[u8] = b"\x80\x04\x95\x1a\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.";
const BENIGN_P2: &[u8] = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01K\x02eX\x01\x00\x00\x00bq\x03G?\xf0\x00\x00\x00\x00\x00\x00u.";

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("a.pkl", EVIL_P4.to_vec()),
        ("b.pkl", BENIGN_P2.to_vec()),
        ("p0.pkl", b"cos\nsystem\n(S'id'\ntR.".to_vec()),
        ("m.pt", zip(&[("archive/data.pkl", BENIGN_P2), ("archive/data/0", &[0u8; 8])])),
        ("m.safetensors", safetensors()),
        ("m.gguf", gguf()),
        (
            "a.npy",
            b"\x93NUMPY\x01\x00D\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }          \n\0\0\0\0\0\0\0\0".to_vec(),
        ),
    ]
}

#[test]
fn seeds_give_expected_verdicts() {
    let l = Limits::default();
    let worst = |name: &str, b: &[u8]| {
        scan_bytes(b, name, &l)
            .unwrap()
            .iter()
            .map(|f| f.severity)
            .max()
    };
    assert_eq!(worst("a.pkl", EVIL_P4), Some(Severity::Malicious));
    for (name, b) in seeds().into_iter().skip(3) {
        assert_eq!(worst(name, &b), None, "{name} should be clean");
    }
    assert_eq!(worst("b.pkl", BENIGN_P2), None);
    let evil_zip = zip(&[("archive/data.pkl", EVIL_P4)]);
    let f = scan_bytes(&evil_zip, "m.pt", &l).unwrap();
    assert_eq!(f[0].member.as_deref(), Some("archive/data.pkl"));
    assert_eq!(f[0].global.as_deref(), Some("os.system"));
    assert_eq!(f[0].waiver_key(), "pickle/denylisted-global:os.system");
    let json = serde_json::to_value(&f[0]).unwrap();
    assert_eq!(json["severity"], "malicious");
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(r: &mut Rng, b: &mut Vec<u8>) {
    for _ in 0..1 + r.below(4) {
        match r.below(6) {
            0 if !b.is_empty() => {
                let i = r.below(b.len());
                b[i] ^= 1 << r.below(8);
            }
            1 if !b.is_empty() => {
                let i = r.below(b.len());
                b[i] = r.next() as u8;
            }
            2 => {
                let i = r.below(b.len() + 1);
                b.insert(i, r.next() as u8);
            }
            3 if !b.is_empty() => {
                let i = r.below(b.len());
                b.remove(i);
            }
            4 if !b.is_empty() => {
                // overwrite 8 bytes with an interesting integer (lengths, counts, offsets)
                let i = r.below(b.len());
                let v: u64 = [0, 1, 0x7f, 0xff, 0xffff, 0xffff_ffff, u64::MAX, 1 << 40][r.below(8)];
                for (k, x) in v.to_le_bytes().iter().enumerate() {
                    if let Some(y) = b.get_mut(i + k) {
                        *y = *x;
                    }
                }
            }
            _ => b.truncate(r.below(b.len() + 1)),
        }
    }
}

#[test]
fn mutated_inputs_never_panic_and_stay_bounded() {
    let iters: usize = std::env::var("AIRLOCK_SCAN_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let limits = Limits {
        max_inflate: 8 << 20,
        max_pickle_ops: 200_000,
        ..Default::default()
    };
    let seeds = seeds();
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..iters {
        let (name, seed) = &seeds[r.below(seeds.len())];
        let mut b = seed.clone();
        mutate(&mut r, &mut b);
        let t = Instant::now();
        let _ = scan_bytes(&b, name, &limits);
        let _ = airlock_scan::pickle::analyse(&b.as_slice(), &limits);
        let _ = airlock_scan::safetensors::validate(&b.as_slice(), 1 << 20);
        let _ = airlock_scan::gguf::validate(&b.as_slice(), &limits);
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(2),
        "one input took {slowest:?}"
    );
    eprintln!(
        "{iters} mutated inputs in {:?}, slowest {slowest:?}",
        start.elapsed()
    );
}

/// A raw tensor dump named `.bin` whose first byte happens to be a protocol-0 opcode used to
/// decode a dotted "global" out of the noise (`c` + `x.\x99\n...`) and be called malicious.
/// Names Python could not import are ignored when the guess never completes a pickle; a real
/// payload followed by a broken stream still counts.
#[test]
fn garbage_named_bin_is_not_a_pickle_payload() {
    let l = Limits::default();
    let noise = b"c\x13a.\x99\xfe\n\x01\x02.\x88\n\xff\xff\x00garbage".to_vec();
    let f = scan_bytes(&noise, "pytorch_model.bin", &l).unwrap();
    assert!(f.is_empty(), "noise reported: {f:?}");
    // The same bytes named like a pickle are still a (suspicious) broken pickle.
    let f = scan_bytes(&noise, "model.pkl", &l).unwrap();
    assert!(!f.is_empty());
    // A real payload that breaks the stream afterwards, named `.bin`, is still malicious.
    let evil = b"cos\nsystem\n(S'id'\ntR\xff\xff".to_vec();
    let f = scan_bytes(&evil, "weights.bin", &l).unwrap();
    assert!(
        f.iter()
            .any(|x| x.severity == Severity::Malicious && x.global.as_deref() == Some("os.system")),
        "{f:?}"
    );
}

fn layer_tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Image layers are walked as a stream: every regular file is scanned by content, nested
/// archives included; gzip, zstd and plain tar; a layer cut right after its last member (as
/// umoci writes them) is accepted; a corrupt stream is an `invalid` finding.
#[test]
fn image_layers_are_scanned_member_by_member() {
    use airlock_scan::{scan_layer, Compression, NoRules};
    use std::io::Write;
    let l = Limits::default();
    let nested = zip(&[("archive/data.pkl", EVIL_P4)]);
    let tar = layer_tar(&[
        ("etc/motd", b"welcome\n"),
        ("opt/app/model.pt", &nested),
        ("opt/app/ok.pkl", BENIGN_P2),
        ("opt/app/.wh.gone.pkl", EVIL_P4),
    ]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    for (c, bytes) in [
        (Compression::None, &tar),
        (Compression::Gzip, &gz),
        (Compression::Zstd, &zst),
    ] {
        let f = scan_layer(&bytes[..], c, "layer", &l, &NoRules).unwrap();
        assert_eq!(f.len(), 1, "{c:?}: {f:?}");
        assert_eq!(
            f[0].member.as_deref(),
            Some("opt/app/model.pt!/archive/data.pkl")
        );
        assert_eq!(f[0].global.as_deref(), Some("os.system"));
    }
    // Cut right after the last member's data: no padding, no end blocks.
    let short = layer_tar(&[("a.txt", b"x"), ("b.pkl", EVIL_P4)]);
    let cut = 512 + 512 + 512 + EVIL_P4.len();
    let f = scan_layer(&short[..cut], Compression::None, "layer", &l, &NoRules).unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, "pickle/denylisted-global");
    // Large members are spilled to a temporary file and scanned the same way.
    let small = Limits {
        max_member_in_memory: 16,
        ..Limits::default()
    };
    let f = scan_layer(&tar[..], Compression::None, "layer", &small, &NoRules).unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    // Corrupt compressed stream: a finding that names the layer, not an error.
    let mut bad = gz.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    bad[mid + 1] ^= 0xff;
    let f = scan_layer(&bad[..], Compression::Gzip, "layer", &l, &NoRules).unwrap();
    assert!(
        f.iter()
            .any(|f| f.rule == "layer/corrupt" && f.severity == Severity::Invalid),
        "{f:?}"
    );
    // A layer that unpacks past the limit is reported, not followed.
    let tiny = Limits {
        max_layer_unpacked: 1024,
        ..Limits::default()
    };
    let f = scan_layer(&tar[..], Compression::None, "layer", &tiny, &NoRules).unwrap();
    assert!(f.iter().any(|f| f.rule == "layer/too-large"), "{f:?}");
    assert_eq!(
        Compression::of_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        Some(Compression::Gzip)
    );
    assert_eq!(
        Compression::of_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
        Some(Compression::Zstd)
    );
    assert_eq!(
        Compression::of_media_type("application/vnd.oci.image.config.v1+json"),
        None
    );
}

/// Text files that start with a pickle opcode byte, found scanning a Debian system: none of
/// them is a pickle, and none may be reported as one.
#[test]
fn text_that_starts_like_a_pickle_is_not_one() {
    let l = Limits::default();
    for (name, text) in [
        // Debian copyright files: 'F' is FLOAT; the machine completed a "pickle" and failed after.
        (
            "copyright",
            &b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: iptables\nSource: https://www.netfilter.org/\n\nFiles: *\nCopyright: 1999-2024 Netfilter\n"[..],
        ),
        // Java service files: 'c' is GLOBAL with dotted names on both sides.
        (
            "META-INF/services/com.google.appengine.spi.FactoryProvider",
            b"com.google.appengine.api.datastore.IDatastoreServiceFactoryProvider\ncom.google.appengine.api.memcache.IMemcacheServiceFactoryProvider\n",
        ),
        // `.pth` and `.pt` that are text: a site-packages path file and vim's Portuguese tutor.
        (
            "distutils-precedence.pth",
            b"import os; var = 'SETUPTOOLS_USE_DISTUTILS'; enabled = os.environ.get(var, 'local') == 'local'; enabled and __import__('_distutils_hack').add_shim(); \n",
        ),
        (
            "tutor.pt",
            b"===============================================================================\n=    B e m - v i n d o   ao   t u t o r   d o   V I M\n",
        ),
    ] {
        let f = scan_bytes(text, name, &l).unwrap();
        assert!(f.is_empty(), "{name}: {f:?}");
    }
}
