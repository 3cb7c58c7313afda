//! Shared fixtures for the end-to-end tests: locating the built binaries, running commands,
//! building sample content with real tools (umoci), keys and trust roots, and crafting bad
//! volumes with Python's `tarfile` and the `zstd` CLI.
//!
//! The binaries must be built first (`cargo build --workspace --bins`, which `scripts/test.sh`
//! does); tests fail with a clear message otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `scripts/gen-safetensors.py`: writes a valid safetensors file of random data, so the
/// scanner's validator passes fixture models (random bytes named .safetensors are invalid).
pub fn gen_safetensors() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/gen-safetensors.py")
        .display()
        .to_string()
}

/// `target/<profile>/` holding the binaries, found from the test executable's location.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe
        .parent()
        .expect("deps")
        .parent()
        .expect("profile dir")
        .to_path_buf();
    assert!(
        dir.join("airlock").exists(),
        "{} has no airlock binary: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        dir.display()
    );
    dir
}

pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// The Python of the test venv (securesystemslib, huggingface_hub, ...).
pub fn python() -> PathBuf {
    let venv = std::env::var_os("AIRLOCK_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} missing: run scripts/test.sh, which creates the test venv",
        py.display()
    );
    py
}

/// The result of a finished command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    /// Exit code 1: a refusal or failure the program reported. A panic (101) or a signal is
    /// a test failure, not a refusal.
    pub fn refused(self) -> Self {
        assert_eq!(
            self.code, 1,
            "expected exit code 1 (a reported refusal)\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn fails(self) -> Self {
        assert_ne!(
            self.code, 0,
            "command unexpectedly succeeded\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
    /// Asserts stderr mentions every fragment.
    pub fn says(self, fragments: &[&str]) -> Self {
        for f in fragments {
            assert!(
                self.stderr.contains(f) || self.stdout.contains(f),
                "output lacks {f:?}\nstdout:\n{}\nstderr:\n{}",
                self.stdout,
                self.stderr
            );
        }
        self
    }
}

fn finish(what: &str, out: std::io::Result<Output>) -> Run {
    let out = out.unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a program with arguments in `cwd`.
pub fn run_in(cwd: &Path, prog: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Run {
    let prog = prog.as_ref();
    finish(
        &prog.to_string_lossy(),
        Command::new(prog)
            .args(args)
            .current_dir(cwd)
            .env_remove("AIRLOCK_LOG")
            .output(),
    )
}

/// Runs `airlock ARGS` in `cwd`.
pub fn airlock(cwd: &Path, args: &[&str]) -> Run {
    run_in(cwd, bin("airlock"), args)
}

/// Runs `airlockd ARGS` in the fixture's directory.
pub fn airlockd(f: &Fixture, args: &[&str]) -> Run {
    run_in(f.path(), bin("airlockd"), args)
}

/// Runs a shell snippet in `cwd`.
pub fn sh(cwd: &Path, script: &str) -> Run {
    run_in(cwd, "bash", &["-euo", "pipefail", "-c", script])
}

/// A directory with sample content and a manifest naming it:
/// `layouts/hello` (umoci image, tag v1), `models/tiny` (3 files), `bin/k3s`, `m.yaml`,
/// plus keys `keys/{root,signer,signer2}.{key,pub}` and `root.json` (threshold 1).
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_model_bytes(300_000)
    }

    /// `model_bytes` of random data in `models/tiny/model.safetensors`.
    pub fn with_model_bytes(model_bytes: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        let gen = gen_safetensors();
        sh(
            p,
            &format!(
                r#"
mkdir -p src/hello models/tiny/sub bin
echo "hello from airlock" > src/hello/hello.txt
umoci init --layout layouts/hello
umoci new --image layouts/hello:v1
umoci insert --image layouts/hello:v1 src/hello /hello >/dev/null
umoci config --image layouts/hello:v1 --architecture amd64 --os linux >/dev/null
umoci gc --layout layouts/hello
printf -- '---\nlicense: apache-2.0\n---\n# tiny model\n' > models/tiny/README.md
echo '{{"architectures":["Tiny"]}}' > models/tiny/config.json
python3 {gen} {model_bytes} models/tiny/model.safetensors
(echo airlock-test-data; head -c 70000 /dev/urandom) > models/tiny/sub/extra.dat
(echo airlock-test-data; head -c 100000 /dev/urandom) > bin/k3s
cat > m.yaml <<YAML
apiVersion: airlock/v1
kind: Bundle
metadata: {{name: demo, version: "1.0.0", channel: stable}}
spec:
  images:
    - ref: oci:./layouts/hello:v1
      name: registry.example/acme/hello:v1
  models:
    - name: acme/tiny-model
      source: dir:./models/tiny
  files:
    - name: k3s
      path: ./bin/k3s
      sha256: "$(sha256sum bin/k3s | cut -d' ' -f1)"
YAML
"#
            ),
        )
        .ok();
        for k in ["root", "signer", "signer2"] {
            airlock(p, &["keys", "generate", "--name", k, "--out", "keys"]).ok();
        }
        airlock(
            p,
            &[
                "trust",
                "init",
                "--root-key",
                "keys/root.key",
                "--signer",
                "keys/signer.pub",
                "--out",
                "root.json",
            ],
        )
        .ok();
        Fixture { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn airlock(&self, args: &[&str]) -> Run {
        airlock(self.path(), args)
    }

    pub fn sh(&self, script: &str) -> Run {
        sh(self.path(), script)
    }

    /// Packs `m.yaml` into `out` with extra args; returns the volume paths (relative).
    pub fn pack(&self, out: &str, extra: &[&str]) -> Vec<String> {
        self.pack_manifest("m.yaml", out, extra)
    }

    /// `airlock --json pack MANIFEST --key keys/signer.key --out OUT EXTRA...`, whatever its
    /// outcome.
    pub fn pack_run(&self, manifest: &str, out: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            "--json",
            "pack",
            manifest,
            "--key",
            "keys/signer.key",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        self.airlock(&args)
    }

    /// [`Fixture::pack_run`], which must succeed; the volume paths.
    pub fn pack_manifest(&self, manifest: &str, out: &str, extra: &[&str]) -> Vec<String> {
        let r = self.pack_run(manifest, out, extra).ok();
        r.json()["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .map(|v| v["path"].as_str().expect("path").to_string())
            .collect()
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

/// Rewrites the tar inside volume `src` with a Python snippet and writes it to `dst` as a
/// well-formed volume: one zstd frame per tar entry (made with the `zstd` CLI) and a valid
/// frame index, as an attacker who knows the format would. The snippet sees `entries`, a list
/// of `(tarinfo, bytes)` pairs, and may edit it; names are in `names`; `regular(name, data)`
/// makes a regular-file entry. Every header is written by `hdr(name, size, typeflag, linkname,
/// devmajor)`, byte for byte the canonical header of `tarfmt::header` (plus the given type,
/// link name and device number), so each case reaches the check it targets. An entry may be a
/// triple `(tarinfo, bytes, header)` to use its own 512-byte header instead; `hdr` also takes
/// `mode`, `uid`, `gid`, `uname`, `gname` and `mtime` for such headers. Setting `eof_frame` to a
/// path replaces the end-of-archive frame with that file's compressed bytes (for decompression
/// bombs).
pub fn rewrite_volume(cwd: &Path, src: &str, dst: &str, python_edit: &str) {
    let script = format!(
        r#"
import io, struct, subprocess, sys, tarfile
src = subprocess.run(["zstd", "-dc", sys.argv[1]], check=True, capture_output=True).stdout
entries = []
with tarfile.open(fileobj=io.BytesIO(src), mode="r:") as t:
    for m in t.getmembers():
        entries.append((m, t.extractfile(m).read() if m.isfile() else b""))
names = [m.name for m, _ in entries]
eof_frame = None
def regular(name, data):
    ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = 0o644; return (ti, data)
def hdr(name, size, typeflag=b"0", linkname="", devmajor=0,
        mode=0o644, uid=0, gid=0, uname="", gname="", mtime=0):
    # Byte for byte what tarfmt::header writes (for the defaults).
    h = bytearray(512)
    n = name.encode(); assert len(n) <= 100, name
    h[0:len(n)] = n
    h[100:108] = b"%07o\0" % mode
    h[108:116] = b"%07o\0" % uid
    h[116:124] = b"%07o\0" % gid
    if size < 0o77777777777:
        h[124:136] = b"%011o\0" % size
    else:
        h[124] = 0x80; h[128:136] = size.to_bytes(8, "big")
    h[136:148] = b"%011o\0" % mtime
    h[156:157] = typeflag
    l = linkname.encode(); h[157:157 + len(l)] = l
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    u = uname.encode(); h[265:265 + len(u)] = u
    g = gname.encode(); h[297:297 + len(g)] = g
    h[329:337] = b"%07o\0" % devmajor
    h[337:345] = b"0000000\0"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)
{python_edit}
def z(b):
    return subprocess.run(["zstd", "-q", "-3", "-c"], input=b, check=True, capture_output=True).stdout
chunks = []
for e in entries:
    ti, data = e[0], e[1]
    size = len(data) if ti.isfile() else 0
    raw = e[2] if len(e) > 2 else hdr(ti.name, size, ti.type, ti.linkname, ti.devmajor)
    if ti.isfile():
        raw += data + b"\0" * ((512 - len(data) % 512) % 512)
    chunks.append((raw, z(raw)))
eof = b"\0" * 1024
chunks.append((eof, open(eof_frame, "rb").read() if eof_frame else z(eof)))
out, records, coff, uoff = bytearray(), [], 0, 0
for i, (raw, comp) in enumerate(chunks):
    records.append(struct.pack("<QIQII", coff, len(comp), uoff, len(raw), i))
    out += comp; coff += len(comp); uoff += len(raw)
payload = b"".join(records) + struct.pack("<I", len(records)) + b"AIRLKIX1"
out += struct.pack("<II", 0x184D2A5E, len(payload)) + payload
open(sys.argv[2], "wb").write(out)
"#
    );
    std::fs::write(cwd.join("edit.py"), script).expect("write edit.py");
    sh(cwd, &format!("python3 edit.py {src} {dst}")).ok();
}

/// Flips one byte of a file at `offset`.
pub fn flip_byte(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).expect("read");
    b[0] ^= 0x5a;
    f.write_all_at(&b, offset).expect("write");
}

/// The frame records of a volume's index (version 1 or 2): (compressed offset, compressed
/// size, entry).
pub fn frames(path: &Path) -> Vec<(u64, u64, u32)> {
    let data = std::fs::read(path).expect("read volume");
    let n = data.len();
    let record = match &data[n - 8..] {
        b"AIRLKIX1" => 28,
        b"AIRLKIX2" => 32,
        _ => panic!("volume has no frame index"),
    };
    let count = u32::from_le_bytes(data[n - 12..n - 8].try_into().unwrap()) as usize;
    let start = n - 12 - count * record;
    (0..count)
        .map(|i| {
            let r = &data[start + i * record..start + (i + 1) * record];
            (
                u64::from_le_bytes(r[0..8].try_into().unwrap()),
                u32::from_le_bytes(r[8..12].try_into().unwrap()) as u64,
                u32::from_le_bytes(r[24..28].try_into().unwrap()),
            )
        })
        .collect()
}

/// A containerd daemon with its root, state and sockets in a temp dir; killed on drop.
/// Needs root (CI and the dev machines run as root).
pub struct Containerd {
    pub dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Containerd {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd-ttrpc.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
"#,
            d = d.display()
        );
        std::fs::write(d.join("config.toml"), config).expect("config");
        let log = std::fs::File::create(d.join("containerd.log")).expect("log");
        let child = Command::new("containerd")
            .args(["--config", &d.join("config.toml").to_string_lossy()])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("containerd must be installed (scripts/test.sh installs it)");
        let c = Containerd { dir, child };
        for _ in 0..100 {
            if c.ctr(&["version"]).code == 0 {
                return c;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "containerd did not start: {}",
            std::fs::read_to_string(c.dir.path().join("containerd.log")).unwrap_or_default()
        );
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    pub fn ctr(&self, args: &[&str]) -> Run {
        let sock = self.socket();
        let mut all = vec!["-a", sock.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        run_in(self.dir.path(), "ctr", &all)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The TCP port process `pid` listens on, read from `/proc` (its socket inodes matched against
/// the LISTEN entries of `/proc/net/tcp` and `tcp6`): for peers told to bind port 0 that do not
/// report the port they got. Waits up to 15 s for it to appear.
pub fn listening_port(pid: u32) -> u16 {
    let t = std::time::Instant::now();
    loop {
        let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .filter_map(|l| {
                        let l = l.to_string_lossy().to_string();
                        l.strip_prefix("socket:[")
                            .and_then(|x| x.strip_suffix(']'))
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = std::fs::read_to_string(table).unwrap_or_default();
            for line in text.lines().skip(1) {
                let cols: Vec<&str> = line.split_whitespace().collect();
                // local_address is HEXIP:HEXPORT, st 0A is LISTEN, inode is column 9.
                if cols.len() > 9 && cols[3] == "0A" && inodes.iter().any(|i| i == cols[9]) {
                    let port = cols[1].rsplit(':').next().unwrap();
                    return u16::from_str_radix(port, 16).unwrap();
                }
            }
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(15),
            "process {pid} never listened on a TCP port"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A background process printing one line (its address or port) on stdout first; killed
/// (SIGTERM, then waited for) on drop. Used for `airlockd serve --listen` and stand-in servers.
pub struct Background {
    child: Option<std::process::Child>,
    /// The first line the process printed.
    pub first_line: String,
}

impl Background {
    pub fn start(cwd: &Path, prog: impl AsRef<std::ffi::OsStr>, args: &[&str], log: &Path) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(prog)
            .args(args)
            .current_dir(cwd)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("spawn background process");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        assert!(
            !line.is_empty(),
            "background process printed nothing: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        Background {
            child: Some(child),
            first_line: line.trim().to_string(),
        }
    }

    /// `airlockd serve --data DATA --listen 127.0.0.1:0` in `cwd`; returns it and its base URL.
    pub fn airlockd_serve(cwd: &Path, data: &str) -> (Self, String) {
        let b = Self::start(
            cwd,
            bin("airlockd"),
            &[
                "--json",
                "serve",
                "--data",
                data,
                "--listen",
                "127.0.0.1:0",
                "--interval",
                "200ms",
            ],
            &cwd.join(format!("{data}.serve.log")),
        );
        let v: serde_json::Value =
            serde_json::from_str(&b.first_line).unwrap_or_else(|e| panic!("{e}: {}", b.first_line));
        let url = format!("http://{}", v["listening"].as_str().expect("listening"));
        (b, url)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

/// Validates the CycloneDX JSON `file` with cyclonedx-python-lib's strict validator for 1.6;
/// panics with its error otherwise.
pub fn validate_cyclonedx(file: &Path) {
    let script = r#"
import sys
from cyclonedx.validation.json import JsonStrictValidator
from cyclonedx.schema import SchemaVersion
err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
if err is not None:
    print(err)
    sys.exit(1)
print("valid")
"#;
    let out = Command::new(python())
        .args(["-c", script, file.to_str().expect("utf-8")])
        .output()
        .expect("running python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("valid"),
        "{} is not valid CycloneDX 1.6: {stdout}{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
