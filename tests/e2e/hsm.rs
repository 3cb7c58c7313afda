//! Keys inside a PKCS#11 token (SoftHSM2): generated in the token, signing trust roots and
//! bundles through `pkcs11:` URIs, verified by airlock, securesystemslib and airlockd.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_e2e::{airlockd, bin, python, run_in, Fixture, Run};

const PIN: &str = "1234";
const SO_PIN: &str = "5678";

/// A SoftHSM2 token labelled `airlock` in its own directory under `dir`, PIN in `dir/pin`.
struct SoftHsm {
    conf: PathBuf,
}

impl SoftHsm {
    fn new(dir: &Path) -> Self {
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("pin"), format!("{PIN}\n")).unwrap();
        let hsm = SoftHsm { conf };
        let init = [
            "--init-token",
            "--free",
            "--label",
            "airlock",
            "--so-pin",
            SO_PIN,
            "--pin",
            PIN,
        ];
        hsm.run(dir, "softhsm2-util", &init).ok();
        hsm
    }

    /// Runs `prog ARGS` in `cwd` with this token's configuration.
    fn run(&self, cwd: &Path, prog: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Run {
        let out = Command::new(prog.as_ref())
            .args(args)
            .current_dir(cwd)
            .env("SOFTHSM2_CONF", &self.conf)
            .env_remove("AIRLOCK_LOG")
            .env_remove("AIRLOCK_PKCS11_MODULE")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", prog.as_ref()));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn airlock(&self, cwd: &Path, args: &[&str]) -> Run {
        self.run(cwd, bin("airlock"), args)
    }
}

/// The URI of key `object` in the test token, PIN read from the file `pin`.
fn key_uri(object: &str) -> String {
    format!("pkcs11:token=airlock;object={object}?pin-source=file:pin")
}

/// `airlock keys generate --pkcs11` for each name; returns the key ids.
fn generate(hsm: &SoftHsm, dir: &Path, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            let r = hsm
                .airlock(
                    dir,
                    &[
                        "--json",
                        "keys",
                        "generate",
                        "--pkcs11",
                        "pkcs11:token=airlock?pin-source=file:pin",
                        "--name",
                        n,
                        "--out",
                        "hsm",
                    ],
                )
                .ok();
            let j = r.json();
            assert_eq!(j["uri"], format!("pkcs11:token=airlock;object={n}"), "{j}");
            assert!(dir.join(format!("hsm/{n}.pub")).exists());
            assert!(!dir.join(format!("hsm/{n}.key")).exists());
            j["keyid"].as_str().unwrap().to_string()
        })
        .collect()
}

/// securesystemslib verifies the bundle's DSSE envelope with the public key from the token.
fn securesystemslib_verifies(f: &Fixture, volume: &str, public: &str) {
    f.sh(&format!(
        "zstd -dc {volume} | tar -xO airlock-bundle.dsse.json > env.json"
    ))
    .ok();
    let pubhex = f
        .sh(&format!(
            "openssl pkey -pubin -in {public} -outform DER | tail -c 32 | xxd -p -c 64"
        ))
        .ok()
        .stdout;
    let script = r#"
import json, sys, hashlib
from securesystemslib.signer import SSlibKey
from securesystemslib.dsse import Envelope
pub = sys.argv[1]
keyid = hashlib.sha256(json.dumps({"keytype":"ed25519","keyval":{"public":pub},"scheme":"ed25519"}, sort_keys=True, separators=(",",":")).encode()).hexdigest()
key = SSlibKey(keyid=keyid, keytype="ed25519", scheme="ed25519", keyval={"public": pub})
Envelope.from_dict(json.load(open(sys.argv[2]))).verify([key], 1)
print("verified", keyid)
"#;
    std::fs::write(f.p("v.py"), script).unwrap();
    run_in(f.path(), python(), &["v.py", pubhex.trim(), "env.json"])
        .ok()
        .says(&["verified"]);
}

#[test]
fn hsm_keys_sign_the_trust_root_and_bundle_that_airlockd_imports() {
    let f = Fixture::new();
    let dir = f.path();
    let hsm = SoftHsm::new(dir);
    let ids = generate(&hsm, dir, &["root-a", "root-b", "signer"]);

    // Two root keys in one token, threshold 2: both sign through one module and login.
    let (ra, rb) = (key_uri("root-a"), key_uri("root-b"));
    let r = hsm
        .airlock(
            dir,
            &[
                "--json",
                "trust",
                "init",
                "--root-key",
                &ra,
                "--root-key",
                &rb,
                "--root-threshold",
                "2",
                "--signer",
                "hsm/signer.pub",
                "--out",
                "hsm-root.json",
            ],
        )
        .ok();
    let j = r.json();
    assert_eq!(j["bundleKeys"][0], ids[2].as_str(), "{j}");
    assert_eq!(j["rootKeys"].as_array().unwrap().len(), 2, "{j}");

    // The PIN given inline, as the brief form of a URI allows.
    let signer = format!("pkcs11:token=airlock;object=signer?pin-value={PIN}");
    let r = hsm
        .airlock(
            dir,
            &["--json", "pack", "m.yaml", "--key", &signer, "--out", "out"],
        )
        .ok();
    let vol = r.json()["volumes"][0]["path"].as_str().unwrap().to_string();

    let v = f
        .airlock(&["--json", "verify", "--trust", "hsm-root.json", &vol])
        .ok()
        .json();
    assert_eq!(v["ok"], true, "{v}");
    securesystemslib_verifies(&f, &vol, "hsm/signer.pub");

    airlockd(&f, &["init", "--data", "data", "--trust", "hsm-root.json"]).ok();
    airlockd(&f, &["import", "--data", "data", &vol]).ok();
    let list = airlockd(&f, &["--json", "list", "--data", "data"]).ok();
    assert!(list.stdout.contains("acme/tiny-model"), "{}", list.stdout);

    // Rotation signed by both old root keys in the token.
    hsm.airlock(
        dir,
        &[
            "trust",
            "rotate",
            "--from",
            "hsm-root.json",
            "--sign-key",
            &ra,
            "--sign-key",
            &rb,
            "--root-key",
            &ra,
            "--signer",
            "hsm/signer.pub",
            "--out",
            "hsm-root2.json",
        ],
    )
    .ok();
}

#[test]
fn hsm_wrong_pin_missing_key_or_module_is_a_clear_refusal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let hsm = SoftHsm::new(dir);
    generate(&hsm, dir, &["signer"]);
    // The same label again is refused: keys are never overwritten.
    hsm.airlock(
        dir,
        &[
            "keys",
            "generate",
            "--pkcs11",
            "pkcs11:token=airlock?pin-source=file:pin",
            "--name",
            "signer",
            "--out",
            "other",
        ],
    )
    .refused()
    .says(&["signer", "never overwritten"]);

    let init = |key: &str| {
        hsm.airlock(
            dir,
            &[
                "trust",
                "init",
                "--root-key",
                key,
                "--signer",
                "hsm/signer.pub",
                "--out",
                "r.json",
            ],
        )
    };
    let r = init("pkcs11:token=airlock;object=signer?pin-value=999999")
        .refused()
        .says(&["airlock", "login failed", "PIN is incorrect"]);
    assert!(
        !r.stderr.contains("999999"),
        "the PIN is echoed: {}",
        r.stderr
    );
    init("pkcs11:token=airlock;object=nope?pin-source=file:pin")
        .refused()
        .says(&["no ed25519 private key", "object=nope"]);
    init("pkcs11:token=elsewhere;object=signer?pin-source=file:pin")
        .refused()
        .says(&["no PKCS#11 token", "elsewhere"]);
    init("pkcs11:token=airlock;object=signer?pin-source=file:nopin")
        .refused()
        .says(&["cannot read the PIN file", "nopin"]);
    init("pkcs11:token=airlock;object=signer?pin-source=file:pin&module-path=/nonexistent/p11.so")
        .refused()
        .says(&["cannot load PKCS#11 module", "/nonexistent/p11.so"]);
    init("pkcs11:token=airlock;slot-id=1;object=signer")
        .refused()
        .says(&["invalid pkcs11 URI", "slot-id"]);
    assert!(!dir.join("r.json").exists());
}

/// Only the connected side links a PKCS#11 loader: airlockd's appliance key is a file.
#[test]
fn hsm_airlockd_links_no_pkcs11_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tree = |pkg: &str| {
        run_in(
            &root,
            &cargo,
            &[
                "tree",
                "-p",
                pkg,
                "-e",
                "normal",
                "--prefix",
                "none",
                "--offline",
            ],
        )
        .ok()
        .stdout
    };
    let links = |out: &str, krate: &str| out.lines().any(|l| l.starts_with(krate));
    let (airlock, airlockd) = (tree("airlock"), tree("airlockd"));
    assert!(links(&airlock, "airlock-pkcs11 ") && links(&airlock, "cryptoki "));
    for krate in ["airlock-pkcs11 ", "cryptoki ", "libloading "] {
        assert!(
            !links(&airlockd, krate),
            "airlockd links {krate}:\n{airlockd}"
        );
    }
}
