//! The install step runner of `airlockd node install`: turns a machine whose node files were
//! rendered into `/` into a running k3s GPU serving node.
//!
//! Steps run in the only order that works, and the first failure stops the run with what to do:
//!
//! 1. **preflight** — the machine can become a node at all.
//! 2. **packages** — `apt-get` installs the profile's packages from the appliance's apt suite
//!    only (`Dir::Etc::SourceList` points at its list, `SourceParts` is disabled), so nothing
//!    is fetched from anywhere else.
//! 3. **driver** — the NVIDIA kernel driver must be loaded before the container toolkit and the
//!    device plugin can find NVML; a driver installed but not yet loaded asks for a reboot.
//! 4. **toolkit** — the NVIDIA container toolkit must be installed before k3s first starts:
//!    k3s registers the `nvidia` containerd runtime only when it finds the toolkit at startup.
//! 5. **k3s** — the rendered installer runs with `INSTALL_K3S_SKIP_DOWNLOAD=true`, installing
//!    the k3s binary the bundle carried; it is not run again while k3s is active.
//! 6. **node-ready**, 7. **gpu-allocatable**, 8. **workloads** — waits until the node is
//!    Ready, advertises `nvidia.com/gpu`, and the profile's Deployments have rolled out.
//!
//! Steps without a GPU skip driver, toolkit and gpu-allocatable. Each finished step is handed
//! to a callback (the caller's audit log). Completed steps that change the machine (packages,
//! driver, toolkit, k3s) are recorded in `/var/lib/airlock/node/install-<profile>.json`, so a
//! run after a failure or a reboot resumes at the step that did not complete; the cheap checks
//! always run again. The record is tied to the commands of those steps: a profile whose
//! packages or installer changed starts from the beginning.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::NodeError;

/// The most bytes of a command's stdout and of its stderr that are kept (the last ones).
pub const OUTPUT_LIMIT: usize = 64 * 1024;
/// The largest resume state file that is read.
const STATE_LIMIT: u64 = 64 * 1024;
/// The most characters of a command's output quoted in a step's detail.
const DETAIL_TAIL: usize = 2000;

/// What to install and how long to wait; filled by the caller from a rendered profile.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `/` in production; a sandbox directory in tests. Used for `/proc` and the state file.
    pub root: PathBuf,
    /// The node profile's name; names the resume state file.
    pub profile: String,
    /// The profile has a `gpu:` section.
    pub gpu: bool,
    /// The packages the closure requests (`apt-get install` arguments).
    pub packages: Vec<String>,
    /// The appliance's apt source list, as a path on the node.
    pub apt_list: PathBuf,
    /// The rendered k3s installer script, as a path on the node.
    pub installer: PathBuf,
    /// Deployment names in namespace `airlock` to wait for.
    pub workloads: Vec<String>,
    /// How long to wait for the node, the GPU and each workload, in seconds.
    pub timeout_secs: u64,
    /// How often to poll while waiting, in seconds.
    pub poll_secs: u64,
}

/// An install step.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
pub enum StepId {
    Preflight,
    Packages,
    Driver,
    Toolkit,
    K3s,
    NodeReady,
    GpuAllocatable,
    Workloads,
}

impl StepId {
    /// The step's name as shown and recorded (`node-ready`).
    pub fn name(self) -> &'static str {
        match self {
            StepId::Preflight => "preflight",
            StepId::Packages => "packages",
            StepId::Driver => "driver",
            StepId::Toolkit => "toolkit",
            StepId::K3s => "k3s",
            StepId::NodeReady => "node-ready",
            StepId::GpuAllocatable => "gpu-allocatable",
            StepId::Workloads => "workloads",
        }
    }

    /// Whether a completed run of this step is remembered and skipped by later runs. Cheap
    /// checks (preflight and the waits) always run again.
    pub fn persisted(self) -> bool {
        matches!(
            self,
            StepId::Packages | StepId::Driver | StepId::Toolkit | StepId::K3s
        )
    }
}

impl std::fmt::Display for StepId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A step as it would run: what `--dry-run` shows.
#[derive(Serialize, Clone, Debug)]
pub struct StepPlan {
    pub id: StepId,
    /// One sentence.
    pub what: String,
    /// The commands (argv lists) the step runs, in order.
    pub commands: Vec<Vec<String>>,
}

/// How a step ended.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// It ran and succeeded.
    Done,
    /// It was done by an earlier run and was not run again.
    Skipped,
    /// It failed; the run stopped here.
    Failed,
    /// The machine must reboot before the run can go on; the run stopped here.
    RebootRequired,
}

/// The record of one step, as handed to the caller's callback.
#[derive(Serialize, Clone, Debug)]
pub struct StepRecord {
    pub id: StepId,
    pub status: StepStatus,
    pub detail: String,
    /// What the operator should do, for a failed step or a required reboot.
    pub fix: Option<String>,
    pub seconds: f64,
}

/// The result of a run.
#[derive(Serialize, Clone, Debug)]
pub struct Outcome {
    /// The steps attempted, in order; the last one is the one that stopped the run, if any.
    pub steps: Vec<StepRecord>,
    /// Every step is done.
    pub complete: bool,
}

/// The output of a command: its exit status (`127` when not found, `-1` when killed by a
/// signal) and the last [`OUTPUT_LIMIT`] bytes of stdout and stderr.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CmdOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// Runs commands. `env` is added to the inherited environment.
pub trait Exec {
    fn run(&self, argv: &[String], env: &[(String, String)]) -> Result<CmdOutput, NodeError>;
}

/// Runs commands as child processes, stdin closed, looking the program up on `PATH`.
#[derive(Clone, Debug, Default)]
pub struct SystemExec {
    /// `PATH` for the commands and their lookup; `None` inherits it.
    pub path: Option<OsString>,
}

impl Exec for SystemExec {
    fn run(&self, argv: &[String], env: &[(String, String)]) -> Result<CmdOutput, NodeError> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| NodeError::Invalid("empty command".into()))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(path) = &self.path {
            cmd.env("PATH", path);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut tries = 0;
        let mut child = loop {
            match cmd.spawn() {
                Ok(child) => break child,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(CmdOutput {
                        status: 127,
                        stdout: String::new(),
                        stderr: format!("{program}: command not found"),
                    });
                }
                // A program just written (by a package install) may still be open for writing
                // in another process for a moment.
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 20 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(NodeError::io(format!("run {program}"))(e)),
            }
        };
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let err_reader = std::thread::spawn(move || stderr.map(read_tail).unwrap_or_default());
        let out = stdout.map(read_tail).unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        let status = child
            .wait()
            .map_err(NodeError::io(format!("wait for {program}")))?;
        Ok(CmdOutput {
            status: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        })
    }
}

/// Reads `r` to its end, keeping only the last [`OUTPUT_LIMIT`] bytes. A read error ends the
/// output where it happened.
fn read_tail(mut r: impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * OUTPUT_LIMIT {
                    kept.drain(..kept.len() - OUTPUT_LIMIT);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if kept.len() > OUTPUT_LIMIT {
        kept.drain(..kept.len() - OUTPUT_LIMIT);
    }
    kept
}

fn argv<S: AsRef<str>>(parts: &[S]) -> Vec<String> {
    parts.iter().map(|s| s.as_ref().to_string()).collect()
}

fn apt_get(p: &Plan, rest: &[&str]) -> Vec<String> {
    let mut v = vec![
        "apt-get".to_string(),
        "-o".into(),
        format!("Dir::Etc::SourceList={}", p.apt_list.display()),
        "-o".into(),
        "Dir::Etc::SourceParts=-".into(),
    ];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

fn apt_update(p: &Plan) -> Vec<String> {
    apt_get(p, &["update"])
}

fn apt_install(p: &Plan) -> Vec<String> {
    let mut v = apt_get(p, &["install", "-y", "--no-install-recommends"]);
    v.extend(p.packages.iter().cloned());
    v
}

fn apt_env() -> Vec<(String, String)> {
    vec![("DEBIAN_FRONTEND".into(), "noninteractive".into())]
}

fn k3s_active() -> Vec<String> {
    argv(&["systemctl", "is-active", "k3s"])
}

fn k3s_installer(p: &Plan) -> Vec<String> {
    vec!["sh".into(), p.installer.display().to_string()]
}

fn k3s_env() -> Vec<(String, String)> {
    [
        ("INSTALL_K3S_SKIP_DOWNLOAD", "true"),
        ("INSTALL_K3S_SKIP_SELINUX_RPM", "true"),
        ("INSTALL_K3S_SELINUX_WARN", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn nodes_ready() -> Vec<String> {
    argv(&[
        "k3s",
        "kubectl",
        "get",
        "nodes",
        "-o",
        r#"jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}"#,
    ])
}

fn gpu_allocatable() -> Vec<String> {
    argv(&[
        "k3s",
        "kubectl",
        "get",
        "nodes",
        "-o",
        r"jsonpath={.items[*].status.allocatable.nvidia\.com/gpu}",
    ])
}

fn rollout(p: &Plan, name: &str) -> Vec<String> {
    vec![
        "k3s".into(),
        "kubectl".into(),
        "-n".into(),
        "airlock".into(),
        "rollout".into(),
        "status".into(),
        format!("deployment/{name}"),
        format!("--timeout={}s", p.timeout_secs),
    ]
}

/// The steps of a profile, in the order they run, with the commands each runs.
pub fn plan(p: &Plan) -> Vec<StepPlan> {
    let mut steps = vec![StepPlan {
        id: StepId::Preflight,
        what: "Check that this machine can become a node.".into(),
        commands: vec![],
    }];
    steps.push(if p.packages.is_empty() {
        StepPlan {
            id: StepId::Packages,
            what: "No packages requested; nothing to install.".into(),
            commands: vec![],
        }
    } else {
        StepPlan {
            id: StepId::Packages,
            what: format!(
                "Install {} package(s) from the appliance's apt suite only.",
                p.packages.len()
            ),
            commands: vec![apt_update(p), apt_install(p)],
        }
    });
    if p.gpu {
        steps.push(StepPlan {
            id: StepId::Driver,
            what: "Check that the NVIDIA driver is loaded (a reboot may be needed after install)."
                .into(),
            commands: vec![argv(&["nvidia-smi"])],
        });
        steps.push(StepPlan {
            id: StepId::Toolkit,
            what: "Check that the NVIDIA container toolkit is installed before k3s starts.".into(),
            commands: vec![
                argv(&["nvidia-ctk", "--version"]),
                argv(&["nvidia-container-runtime", "--version"]),
            ],
        });
    }
    steps.push(StepPlan {
        id: StepId::K3s,
        what: "Install and start k3s from the binary the bundle carried, unless it is running."
            .into(),
        commands: vec![k3s_active(), k3s_installer(p)],
    });
    steps.push(StepPlan {
        id: StepId::NodeReady,
        what: format!("Wait up to {}s for the node to be Ready.", p.timeout_secs),
        commands: vec![nodes_ready()],
    });
    if p.gpu {
        steps.push(StepPlan {
            id: StepId::GpuAllocatable,
            what: format!(
                "Wait up to {}s for the node to advertise nvidia.com/gpu.",
                p.timeout_secs
            ),
            commands: vec![gpu_allocatable()],
        });
    }
    steps.push(StepPlan {
        id: StepId::Workloads,
        what: if p.workloads.is_empty() {
            "No workloads to wait for.".into()
        } else {
            format!(
                "Wait up to {}s for each of {} Deployment(s) in namespace airlock to roll out.",
                p.timeout_secs,
                p.workloads.len()
            )
        },
        commands: p.workloads.iter().map(|w| rollout(p, w)).collect(),
    });
    steps
}

/// The resume state of a profile: the steps completed, for the commands they ran.
#[derive(Serialize, Deserialize, Default, Debug)]
struct State {
    /// SHA-256 of the commands of the persisted steps; a changed plan starts over.
    plan: String,
    done: Vec<StepId>,
}

fn plan_digest(steps: &[StepPlan]) -> String {
    let mut h = Sha256::new();
    for s in steps.iter().filter(|s| s.id.persisted()) {
        let line = serde_json::to_string(&(s.id, &s.commands)).unwrap_or_default();
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// The resume state file of a profile under `root`.
pub fn state_path(root: &Path, profile: &str) -> PathBuf {
    root.join("var/lib/airlock/node")
        .join(format!("install-{profile}.json"))
}

fn check_profile_name(profile: &str) -> Result<(), NodeError> {
    let ok = !profile.is_empty()
        && profile.len() <= 128
        && !profile.starts_with('.')
        && profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(NodeError::Invalid(format!(
            "profile name {profile:?} is not usable in a file name (letters, digits, '-', '_', '.')"
        )))
    }
}

/// Reads the steps done by earlier runs of this plan; anything unreadable counts as none.
fn load_state(path: &Path, digest: &str) -> Result<Vec<StepId>, NodeError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(NodeError::io(format!("open {}", path.display()))(e)),
    };
    let mut bytes = Vec::new();
    file.take(STATE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(NodeError::io(format!("read {}", path.display())))?;
    if bytes.len() as u64 > STATE_LIMIT {
        tracing::warn!(
            path = %path.display(),
            "install state file is larger than {STATE_LIMIT} bytes; ignoring it and starting over"
        );
        return Ok(vec![]);
    }
    match serde_json::from_slice::<State>(&bytes) {
        Ok(state) if state.plan == digest => Ok(state.done),
        Ok(_) => {
            tracing::warn!(
                path = %path.display(),
                "install state was recorded for different packages or installer; starting over"
            );
            Ok(vec![])
        }
        Err(e) => {
            tracing::warn!(
                path = %path.display(),
                error = %e,
                "install state file is not valid; ignoring it and starting over"
            );
            Ok(vec![])
        }
    }
}

/// Writes the state atomically: a temporary file in the same directory, synced, renamed.
fn save_state(path: &Path, state: &State) -> Result<(), NodeError> {
    let dir = path
        .parent()
        .ok_or_else(|| NodeError::Invalid(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(NodeError::io(format!("create {}", dir.display())))?;
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(state)
        .map_err(|e| NodeError::Invalid(format!("encode install state: {e}")))?;
    {
        let mut f = std::fs::File::create(&tmp)
            .map_err(NodeError::io(format!("create {}", tmp.display())))?;
        f.write_all(&json)
            .and_then(|()| f.write_all(b"\n"))
            .and_then(|()| f.sync_all())
            .map_err(NodeError::io(format!("write {}", tmp.display())))?;
    }
    std::fs::rename(&tmp, path).map_err(NodeError::io(format!(
        "rename {} to {}",
        tmp.display(),
        path.display()
    )))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// How a step ended, before timing.
struct Ended {
    status: StepStatus,
    detail: String,
    fix: Option<String>,
}

impl Ended {
    fn done(detail: impl Into<String>) -> Self {
        Ended {
            status: StepStatus::Done,
            detail: detail.into(),
            fix: None,
        }
    }

    fn failed(detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Ended {
            status: StepStatus::Failed,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The last [`DETAIL_TAIL`] characters of a command's output, stderr first.
fn tail(out: &CmdOutput) -> String {
    let text = if out.stderr.trim().is_empty() {
        out.stdout.trim()
    } else {
        out.stderr.trim()
    };
    let count = text.chars().count();
    if count <= DETAIL_TAIL {
        text.to_string()
    } else {
        let skip = text
            .char_indices()
            .nth(count - DETAIL_TAIL)
            .map_or(0, |(i, _)| i);
        format!("…{}", &text[skip..])
    }
}

fn describe(out: &CmdOutput) -> String {
    let t = tail(out);
    if t.is_empty() {
        format!("exit status {}", out.status)
    } else {
        format!("exit status {}: {t}", out.status)
    }
}

/// Runs a command; an error running it becomes a message, so that every step ends as a record.
fn run(exec: &dyn Exec, cmd: &[String], env: &[(String, String)]) -> Result<CmdOutput, String> {
    tracing::debug!(command = ?cmd, "run");
    exec.run(cmd, env)
        .map_err(|e| format!("could not run `{}`: {e}", cmd.join(" ")))
}

/// Polls `cmd` until `accept` returns a detail, or the plan's timeout passes.
fn poll(
    p: &Plan,
    exec: &dyn Exec,
    cmd: &[String],
    accept: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let start = Instant::now();
    let timeout = Duration::from_secs(p.timeout_secs);
    loop {
        let last = match run(exec, cmd, &[]) {
            Ok(out) if out.success() => match accept(out.stdout.trim()) {
                Some(detail) => return Ok(detail),
                None => format!("last answer: {:?}", out.stdout.trim()),
            },
            Ok(out) => format!("last answer: {}", describe(&out)),
            Err(e) => e,
        };
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(format!("not after {}s; {last}", p.timeout_secs));
        }
        std::thread::sleep(Duration::from_secs(p.poll_secs).min(timeout - elapsed));
    }
}

const REBOOT_FIX: &str =
    "the driver is installed but not loaded: reboot, then run `airlockd node install` again; \
    it resumes here";

fn step_packages(p: &Plan, exec: &dyn Exec) -> Ended {
    if p.packages.is_empty() {
        return Ended::done("no packages requested");
    }
    let env = apt_env();
    let fix_sources = format!(
        "check that the appliance's apt suite in {} is reachable from this node and signed by a \
        key apt trusts, then run `airlockd node install` again",
        p.apt_list.display()
    );
    match run(exec, &apt_update(p), &env) {
        Ok(out) if out.success() => {}
        Ok(out) => {
            return Ended::failed(
                format!("apt-get update failed, {}", describe(&out)),
                fix_sources,
            )
        }
        Err(e) => return Ended::failed(e, fix_sources),
    }
    let fix_install = "a package is missing from the appliance's suite or conflicts with one \
        installed: add it (and what it depends on) to the profile's debs closure, publish the \
        bundle to the appliance again, then run `airlockd node install` again";
    match run(exec, &apt_install(p), &env) {
        Ok(out) if out.success() => Ended::done(format!(
            "installed {} package(s) from the appliance's suite",
            p.packages.len()
        )),
        Ok(out) => Ended::failed(
            format!("apt-get install failed, {}", describe(&out)),
            fix_install,
        ),
        Err(e) => Ended::failed(e, fix_install),
    }
}

fn step_driver(p: &Plan, exec: &dyn Exec) -> Ended {
    let fix_run =
        "check that nvidia-smi can be run as root, then run `airlockd node install` again";
    let out = match run(exec, &argv(&["nvidia-smi"]), &[]) {
        Ok(out) => out,
        Err(e) => return Ended::failed(e, fix_run),
    };
    if out.success() {
        return Ended::done("nvidia-smi sees the driver");
    }
    if out.status == 127 {
        return Ended::failed(
            format!("nvidia-smi is not installed, {}", describe(&out)),
            "add the NVIDIA driver packages (the kernel driver and nvidia-utils of one driver \
            branch) to the profile's debs closure, publish the bundle again, then run \
            `airlockd node install` again",
        );
    }
    if !p.root.join("proc/driver/nvidia/version").exists() {
        return Ended {
            status: StepStatus::RebootRequired,
            detail: format!(
                "the NVIDIA kernel module is not loaded (no /proc/driver/nvidia/version); \
                nvidia-smi: {}",
                describe(&out)
            ),
            fix: Some(REBOOT_FIX.into()),
        };
    }
    Ended::failed(
        format!(
            "the driver is loaded but nvidia-smi fails, {}",
            describe(&out)
        ),
        "the loaded kernel module and the installed nvidia-smi probably come from different \
        driver versions: make the profile's closure carry one driver branch, reboot, and run \
        `airlockd node install` again; `dmesg | grep -i nvrm` shows the kernel's side",
    )
}

fn step_toolkit(exec: &dyn Exec) -> Ended {
    let fix = "add nvidia-container-toolkit (which provides nvidia-ctk and \
        nvidia-container-runtime) to the profile's debs closure, publish the bundle again, then \
        run `airlockd node install` again; it must be installed before k3s first starts";
    for cmd in [
        argv(&["nvidia-ctk", "--version"]),
        argv(&["nvidia-container-runtime", "--version"]),
    ] {
        match run(exec, &cmd, &[]) {
            Ok(out) if out.success() => {}
            Ok(out) => {
                return Ended::failed(
                    format!("`{}` failed, {}", cmd.join(" "), describe(&out)),
                    fix,
                )
            }
            Err(e) => return Ended::failed(e, fix),
        }
    }
    Ended::done("nvidia-ctk and nvidia-container-runtime are installed")
}

fn step_k3s(p: &Plan, exec: &dyn Exec) -> Ended {
    if let Ok(out) = run(exec, &k3s_active(), &[]) {
        if out.success() {
            return Ended::done("k3s is already running; the installer was not run");
        }
    }
    let fix = format!(
        "see the installer's output in the detail and `journalctl -u k3s`; check that \
        /usr/local/bin/k3s is the binary the bundle carried and is executable, that {} was \
        rendered, then run `airlockd node install` again",
        p.installer.display()
    );
    match run(exec, &k3s_installer(p), &k3s_env()) {
        Ok(out) if out.success() => {
            Ended::done("k3s installed from the bundled binary and started")
        }
        Ok(out) => Ended::failed(format!("the k3s installer failed, {}", describe(&out)), fix),
        Err(e) => Ended::failed(e, fix),
    }
}

fn step_node_ready(p: &Plan, exec: &dyn Exec) -> Ended {
    let accept = |s: &str| {
        let all: Vec<&str> = s.split_whitespace().collect();
        (!all.is_empty() && all.iter().all(|c| *c == "True"))
            .then(|| "the node is Ready".to_string())
    };
    match poll(p, exec, &nodes_ready(), accept) {
        Ok(detail) => Ended::done(detail),
        Err(e) => Ended::failed(
            format!("the node did not become Ready: {e}"),
            "see `journalctl -u k3s`; common causes: no default route, port 6443 in use",
        ),
    }
}

fn step_gpu(p: &Plan, exec: &dyn Exec) -> Ended {
    let accept = |s: &str| {
        s.split_whitespace()
            .filter_map(|n| n.parse::<u64>().ok())
            .find(|n| *n > 0)
            .map(|n| format!("the node advertises {n} nvidia.com/gpu"))
    };
    match poll(p, exec, &gpu_allocatable(), accept) {
        Ok(detail) => Ended::done(detail),
        Err(e) => Ended::failed(
            format!("the node does not advertise nvidia.com/gpu: {e}"),
            "the NVIDIA device plugin must run with runtimeClassName nvidia to find the GPUs; see \
            `k3s kubectl -n kube-system logs ds/nvidia-device-plugin-daemonset`, and check that \
            `grep nvidia /var/lib/rancher/k3s/agent/etc/containerd/config.toml` lists the nvidia \
            runtime (if not, restart k3s: `systemctl restart k3s`)",
        ),
    }
}

fn step_workloads(p: &Plan, exec: &dyn Exec) -> Ended {
    for name in &p.workloads {
        let fix = format!("see why: `k3s kubectl -n airlock describe deployment/{name}`");
        match run(exec, &rollout(p, name), &[]) {
            Ok(out) if out.success() => {}
            Ok(out) => {
                return Ended::failed(
                    format!("workload {name} did not roll out, {}", describe(&out)),
                    fix,
                )
            }
            Err(e) => return Ended::failed(format!("workload {name}: {e}"), fix),
        }
    }
    if p.workloads.is_empty() {
        Ended::done("no workloads to wait for")
    } else {
        Ended::done(format!(
            "{} workload(s) rolled out: {}",
            p.workloads.len(),
            p.workloads.join(", ")
        ))
    }
}

/// Runs the steps of `p` in order, skipping those done by an earlier run, stopping at the first
/// that fails or needs a reboot. Each record goes to `on_step` as its step finishes.
///
/// Errors are for what stops the runner itself (an unusable profile name, the state file not
/// writable); a step that fails is a record with a fix and `complete: false`.
pub fn install(
    p: &Plan,
    preflight_ok: impl Fn() -> Result<(), String>,
    exec: &dyn Exec,
    on_step: &mut dyn FnMut(&StepRecord),
) -> Result<Outcome, NodeError> {
    check_profile_name(&p.profile)?;
    let steps = plan(p);
    let digest = plan_digest(&steps);
    let path = state_path(&p.root, &p.profile);
    let mut state = State {
        plan: digest.clone(),
        done: load_state(&path, &digest)?,
    };
    let mut records = Vec::with_capacity(steps.len());
    for step in &steps {
        let id = step.id;
        if id.persisted() && state.done.contains(&id) {
            let rec = StepRecord {
                id,
                status: StepStatus::Skipped,
                detail: "done in an earlier run".into(),
                fix: None,
                seconds: 0.0,
            };
            on_step(&rec);
            records.push(rec);
            continue;
        }
        let start = Instant::now();
        let ended = match id {
            StepId::Preflight => match preflight_ok() {
                Ok(()) => Ended::done("the machine can become a node"),
                Err(msg) => Ended::failed("preflight checks failed", msg),
            },
            StepId::Packages => step_packages(p, exec),
            StepId::Driver => step_driver(p, exec),
            StepId::Toolkit => step_toolkit(exec),
            StepId::K3s => step_k3s(p, exec),
            StepId::NodeReady => step_node_ready(p, exec),
            StepId::GpuAllocatable => step_gpu(p, exec),
            StepId::Workloads => step_workloads(p, exec),
        };
        let rec = StepRecord {
            id,
            status: ended.status,
            detail: ended.detail,
            fix: ended.fix,
            seconds: start.elapsed().as_secs_f64(),
        };
        let done = rec.status == StepStatus::Done;
        if done && id.persisted() {
            state.done.push(id);
            save_state(&path, &state)?;
        }
        tracing::info!(step = %id, status = ?rec.status, detail = %rec.detail, "install step");
        on_step(&rec);
        records.push(rec);
        if !done {
            return Ok(Outcome {
                steps: records,
                complete: false,
            });
        }
    }
    Ok(Outcome {
        steps: records,
        complete: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A sandbox: `root/` as the node's `/`, `bin/` with stub commands that log their calls to
    /// `calls.log` and fail when `fail-<name>` exists.
    struct Sandbox {
        dir: tempfile::TempDir,
        exec: SystemExec,
    }

    const STUBS: &[&str] = &[
        "apt-get",
        "nvidia-smi",
        "nvidia-ctk",
        "nvidia-container-runtime",
        "systemctl",
        "k3s",
    ];

    impl Sandbox {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path().display().to_string();
            let bin = dir.path().join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::create_dir_all(dir.path().join("root")).unwrap();
            for name in STUBS {
                let body = match *name {
                    "systemctl" => format!(
                        "if [ -e '{d}/active-k3s' ]; then exit 0; fi\necho inactive\nexit 3\n"
                    ),
                    "k3s" => format!(
                        "case \"$*\" in\n\
                         *rollout*) if [ -e '{d}/fail-rollout' ]; then echo 'timed out' >&2; exit 1; fi ;;\n\
                         *Ready*) if [ -e '{d}/ready-answer' ]; then cat '{d}/ready-answer'; else echo True; fi ;;\n\
                         *allocatable*) echo 1 ;;\n\
                         esac\n"
                    ),
                    _ => String::new(),
                };
                let script = format!(
                    "#!/bin/sh\necho \"{name} $*\" >> '{d}/calls.log'\n\
                     if [ -e '{d}/fail-{name}' ]; then echo '{name}: stub failure' >&2; exit 1; fi\n\
                     {body}exit 0\n"
                );
                write_exe(&bin.join(name), &script);
            }
            let installer = format!(
                "echo \"installer SKIP_DOWNLOAD=$INSTALL_K3S_SKIP_DOWNLOAD\" >> '{d}/calls.log'\n\
                 if [ -e '{d}/fail-installer' ]; then echo 'installer: boom' >&2; exit 1; fi\n"
            );
            std::fs::write(dir.path().join("k3s-install.sh"), installer).unwrap();
            let mut path = OsString::from(bin.as_os_str());
            path.push(":");
            path.push(std::env::var_os("PATH").unwrap_or_default());
            Sandbox {
                dir,
                exec: SystemExec { path: Some(path) },
            }
        }

        fn root(&self) -> PathBuf {
            self.dir.path().join("root")
        }

        fn plan(&self, gpu: bool) -> Plan {
            Plan {
                root: self.root(),
                profile: "gpu-node".into(),
                gpu,
                packages: vec![
                    "nvidia-driver-550".into(),
                    "nvidia-container-toolkit".into(),
                ],
                apt_list: self.dir.path().join("airlock.list"),
                installer: self.dir.path().join("k3s-install.sh"),
                workloads: vec!["vllm".into()],
                timeout_secs: 0,
                poll_secs: 0,
            }
        }

        fn flag(&self, name: &str, on: bool) {
            let f = self.dir.path().join(name);
            if on {
                std::fs::write(f, "").unwrap();
            } else {
                let _ = std::fs::remove_file(f);
            }
        }

        fn log(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join("calls.log"))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        }

        fn clear_log(&self) {
            let _ = std::fs::remove_file(self.dir.path().join("calls.log"));
        }

        fn state(&self) -> String {
            std::fs::read_to_string(state_path(&self.root(), "gpu-node")).unwrap()
        }

        fn install(&self, p: &Plan) -> (Outcome, Vec<StepRecord>) {
            let mut seen = Vec::new();
            let out = install(p, || Ok(()), &self.exec, &mut |r| seen.push(r.clone())).unwrap();
            (out, seen)
        }
    }

    fn write_exe(path: &Path, script: &str) {
        std::fs::write(path, script).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Index of the first logged call starting with `prefix`.
    fn pos(log: &[String], prefix: &str) -> usize {
        log.iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no call {prefix:?} in {log:#?}"))
    }

    fn called(log: &[String], prefix: &str) -> bool {
        log.iter().any(|l| l.starts_with(prefix))
    }

    fn ids(steps: &[StepRecord]) -> Vec<StepId> {
        steps.iter().map(|s| s.id).collect()
    }

    fn statuses(steps: &[StepRecord]) -> Vec<(StepId, StepStatus)> {
        steps.iter().map(|s| (s.id, s.status)).collect()
    }

    #[test]
    fn full_gpu_run_orders_driver_toolkit_k3s() {
        let sb = Sandbox::new();
        let p = sb.plan(true);
        let (out, seen) = sb.install(&p);
        assert!(out.complete, "{:#?}", out.steps);
        assert_eq!(
            ids(&out.steps),
            vec![
                StepId::Preflight,
                StepId::Packages,
                StepId::Driver,
                StepId::Toolkit,
                StepId::K3s,
                StepId::NodeReady,
                StepId::GpuAllocatable,
                StepId::Workloads
            ]
        );
        assert!(out.steps.iter().all(|s| s.status == StepStatus::Done));
        assert_eq!(ids(&seen), ids(&out.steps));

        let log = sb.log();
        let update = pos(&log, "apt-get");
        assert!(log[update].ends_with(" update"), "{log:#?}");
        assert!(log[update].contains("Dir::Etc::SourceParts=-"));
        let install = pos(&log, "apt-get -o");
        let install = install
            + log[install..]
                .iter()
                .position(|l| l.contains(" install -y --no-install-recommends nvidia-driver-550"))
                .unwrap();
        let smi = pos(&log, "nvidia-smi");
        let ctk = pos(&log, "nvidia-ctk --version");
        let runtime = pos(&log, "nvidia-container-runtime --version");
        let active = pos(&log, "systemctl is-active k3s");
        let installer = pos(&log, "installer ");
        let nodes = pos(&log, "k3s kubectl get nodes");
        let rollout = pos(
            &log,
            "k3s kubectl -n airlock rollout status deployment/vllm",
        );
        let order = [
            update, install, smi, ctk, runtime, active, installer, nodes, rollout,
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{log:#?}");
        assert_eq!(log[installer], "installer SKIP_DOWNLOAD=true");

        let state = sb.state();
        for id in ["packages", "driver", "toolkit", "k3s"] {
            assert!(state.contains(&format!("\"{id}\"")), "{state}");
        }
        assert!(
            !state.contains("preflight") && !state.contains("node-ready"),
            "{state}"
        );

        // A second run re-checks the node and skips what changed the machine.
        sb.clear_log();
        let (out, _) = sb.install(&p);
        assert!(out.complete);
        assert_eq!(
            statuses(&out.steps),
            vec![
                (StepId::Preflight, StepStatus::Done),
                (StepId::Packages, StepStatus::Skipped),
                (StepId::Driver, StepStatus::Skipped),
                (StepId::Toolkit, StepStatus::Skipped),
                (StepId::K3s, StepStatus::Skipped),
                (StepId::NodeReady, StepStatus::Done),
                (StepId::GpuAllocatable, StepStatus::Done),
                (StepId::Workloads, StepStatus::Done),
            ]
        );
        assert_eq!(out.steps[1].detail, "done in an earlier run");
        assert!(
            sb.log().iter().all(|l| l.starts_with("k3s kubectl")),
            "{:#?}",
            sb.log()
        );
    }

    #[test]
    fn driver_not_loaded_asks_for_reboot_then_resumes() {
        let sb = Sandbox::new();
        let p = sb.plan(true);
        sb.flag("fail-nvidia-smi", true);
        let (out, seen) = sb.install(&p);
        assert!(!out.complete);
        let last = out.steps.last().unwrap();
        assert_eq!(
            (last.id, last.status),
            (StepId::Driver, StepStatus::RebootRequired)
        );
        assert_eq!(last.fix.as_deref(), Some(REBOOT_FIX));
        assert_eq!(seen.last().unwrap().status, StepStatus::RebootRequired);
        let log = sb.log();
        assert!(
            !called(&log, "nvidia-ctk") && !called(&log, "installer"),
            "{log:#?}"
        );
        let state: State = serde_json::from_str(&sb.state()).unwrap();
        assert_eq!(state.done, vec![StepId::Packages]);

        // After the reboot: the module is loaded and nvidia-smi works.
        let proc = sb.root().join("proc/driver/nvidia");
        std::fs::create_dir_all(&proc).unwrap();
        std::fs::write(proc.join("version"), "NVRM version: 550\n").unwrap();
        sb.flag("fail-nvidia-smi", false);
        sb.clear_log();
        let (out, _) = sb.install(&p);
        assert!(out.complete, "{:#?}", out.steps);
        assert_eq!(out.steps[1].status, StepStatus::Skipped);
        assert_eq!(out.steps[2].status, StepStatus::Done);
        let log = sb.log();
        assert!(!called(&log, "apt-get"), "{log:#?}");
        assert!(pos(&log, "nvidia-smi") < pos(&log, "installer "));
    }

    #[test]
    fn loaded_driver_with_failing_nvidia_smi_fails() {
        let sb = Sandbox::new();
        let p = sb.plan(true);
        let proc = sb.root().join("proc/driver/nvidia");
        std::fs::create_dir_all(&proc).unwrap();
        std::fs::write(proc.join("version"), "NVRM\n").unwrap();
        sb.flag("fail-nvidia-smi", true);
        let (out, _) = sb.install(&p);
        let last = out.steps.last().unwrap();
        assert_eq!((last.id, last.status), (StepId::Driver, StepStatus::Failed));
        assert!(
            last.detail.contains("nvidia-smi: stub failure"),
            "{}",
            last.detail
        );
        assert!(last.fix.is_some());
    }

    #[test]
    fn missing_toolkit_fails_before_k3s() {
        let sb = Sandbox::new();
        let p = sb.plan(true);
        std::fs::remove_file(sb.dir.path().join("bin/nvidia-container-runtime")).unwrap();
        let (out, _) = sb.install(&p);
        let last = out.steps.last().unwrap();
        assert_eq!(
            (last.id, last.status),
            (StepId::Toolkit, StepStatus::Failed)
        );
        assert!(last.detail.contains("not found"), "{}", last.detail);
        assert!(last
            .fix
            .as_deref()
            .unwrap()
            .contains("nvidia-container-toolkit"));
        assert!(!called(&sb.log(), "installer"));
    }

    #[test]
    fn failed_installer_resumes_at_k3s() {
        let sb = Sandbox::new();
        let p = sb.plan(true);
        sb.flag("fail-installer", true);
        let (out, _) = sb.install(&p);
        assert!(!out.complete);
        let last = out.steps.last().unwrap();
        assert_eq!((last.id, last.status), (StepId::K3s, StepStatus::Failed));
        assert!(last.detail.contains("installer: boom"), "{}", last.detail);
        assert!(last.fix.as_deref().unwrap().contains("journalctl -u k3s"));
        assert!(!called(&sb.log(), "k3s kubectl"));

        sb.flag("fail-installer", false);
        sb.clear_log();
        let (out, _) = sb.install(&p);
        assert!(out.complete, "{:#?}", out.steps);
        let log = sb.log();
        assert!(
            !called(&log, "apt-get") && !called(&log, "nvidia-"),
            "{log:#?}"
        );
        assert_eq!(pos(&log, "systemctl"), 0);
        assert!(called(&log, "installer SKIP_DOWNLOAD=true"));
    }

    #[test]
    fn running_k3s_is_not_reinstalled() {
        let sb = Sandbox::new();
        sb.flag("active-k3s", true);
        let (out, _) = sb.install(&sb.plan(true));
        assert!(out.complete);
        assert!(out.steps[4].detail.contains("already running"));
        assert!(!called(&sb.log(), "installer"));
    }

    #[test]
    fn without_gpu_no_driver_toolkit_or_gpu_steps() {
        let sb = Sandbox::new();
        let p = sb.plan(false);
        let planned: Vec<StepId> = plan(&p).iter().map(|s| s.id).collect();
        assert_eq!(
            planned,
            vec![
                StepId::Preflight,
                StepId::Packages,
                StepId::K3s,
                StepId::NodeReady,
                StepId::Workloads
            ]
        );
        let (out, _) = sb.install(&p);
        assert!(out.complete);
        assert_eq!(ids(&out.steps), planned);
        assert!(!called(&sb.log(), "nvidia"));
    }

    #[test]
    fn plan_lists_the_commands() {
        let sb = Sandbox::new();
        let p = sb.plan(true);
        let steps = plan(&p);
        let k3s = steps.iter().find(|s| s.id == StepId::K3s).unwrap();
        assert_eq!(
            k3s.commands[1],
            vec!["sh".to_string(), p.installer.display().to_string()]
        );
        let pk = &steps[1].commands;
        assert_eq!(pk[0][0], "apt-get");
        assert_eq!(pk[1].last().unwrap(), "nvidia-container-toolkit");
        let json = serde_json::to_string(&steps).unwrap();
        assert!(json.contains("\"gpu-allocatable\"") && json.contains("\"node-ready\""));

        let mut empty = p.clone();
        empty.packages.clear();
        assert!(plan(&empty)[1].commands.is_empty());
        let (out, _) = sb.install(&empty);
        assert!(out.complete);
        assert!(!called(&sb.log(), "apt-get"));
    }

    #[test]
    fn corrupt_or_oversized_state_is_ignored() {
        for content in [b"{not json".to_vec(), vec![b' '; 70 * 1024]] {
            let sb = Sandbox::new();
            let path = state_path(&sb.root(), "gpu-node");
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
            let (out, _) = sb.install(&sb.plan(true));
            assert!(out.complete);
            assert_eq!(out.steps[1].status, StepStatus::Done);
            assert!(called(&sb.log(), "apt-get"));
            let state: State = serde_json::from_str(&sb.state()).unwrap();
            assert_eq!(state.done.len(), 4);
        }
    }

    #[test]
    fn changed_packages_start_over() {
        let sb = Sandbox::new();
        let mut p = sb.plan(true);
        sb.install(&p);
        p.packages.push("jq".into());
        sb.clear_log();
        let (out, _) = sb.install(&p);
        assert!(out.complete);
        assert_eq!(out.steps[1].status, StepStatus::Done);
        assert!(called(&sb.log(), "apt-get"));
    }

    #[test]
    fn failed_preflight_stops_before_packages() {
        let sb = Sandbox::new();
        let mut seen = Vec::new();
        let out = install(
            &sb.plan(true),
            || Err("no NVIDIA GPU on the PCI bus".into()),
            &sb.exec,
            &mut |r| seen.push(r.clone()),
        )
        .unwrap();
        assert!(!out.complete);
        assert_eq!(
            statuses(&out.steps),
            vec![(StepId::Preflight, StepStatus::Failed)]
        );
        assert_eq!(
            out.steps[0].fix.as_deref(),
            Some("no NVIDIA GPU on the PCI bus")
        );
        assert_eq!(seen.len(), 1);
        assert!(sb.log().is_empty());
        assert!(!state_path(&sb.root(), "gpu-node").exists());
    }

    #[test]
    fn node_not_ready_fails_with_fix() {
        let sb = Sandbox::new();
        std::fs::write(sb.dir.path().join("ready-answer"), "True False\n").unwrap();
        let (out, _) = sb.install(&sb.plan(true));
        let last = out.steps.last().unwrap();
        assert_eq!(
            (last.id, last.status),
            (StepId::NodeReady, StepStatus::Failed)
        );
        assert!(last.fix.as_deref().unwrap().contains("port 6443"));
        assert!(last.detail.contains("True False"), "{}", last.detail);
    }

    #[test]
    fn failed_rollout_names_the_workload() {
        let sb = Sandbox::new();
        sb.flag("fail-rollout", true);
        let (out, _) = sb.install(&sb.plan(true));
        let last = out.steps.last().unwrap();
        assert_eq!(
            (last.id, last.status),
            (StepId::Workloads, StepStatus::Failed)
        );
        assert!(last.detail.contains("vllm"));
        assert_eq!(
            last.fix.as_deref(),
            Some("see why: `k3s kubectl -n airlock describe deployment/vllm`")
        );
    }

    #[test]
    fn bad_profile_name_is_an_error() {
        let sb = Sandbox::new();
        let mut p = sb.plan(true);
        p.profile = "../x".into();
        assert!(install(&p, || Ok(()), &sb.exec, &mut |_| {}).is_err());
    }

    #[test]
    fn output_is_bounded_and_missing_programs_are_127() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let tail = read_tail(std::io::Cursor::new(&data));
        assert_eq!(tail.len(), OUTPUT_LIMIT);
        assert_eq!(&tail[..], &data[data.len() - OUTPUT_LIMIT..]);

        let exec = SystemExec::default();
        let out = exec
            .run(
                &argv(&["sh", "-c", "yes | head -n 100000; echo err >&2; exit 3"]),
                &[],
            )
            .unwrap();
        assert_eq!(out.status, 3);
        assert_eq!(out.stdout.len(), OUTPUT_LIMIT);
        assert_eq!(out.stderr, "err\n");
        let out = exec
            .run(
                &argv(&["sh", "-c", "echo $AIRLOCK_T"]),
                &[("AIRLOCK_T".into(), "x".into())],
            )
            .unwrap();
        assert_eq!(out.stdout, "x\n");
        let out = exec.run(&argv(&["airlock-no-such-program"]), &[]).unwrap();
        assert_eq!(out.status, 127);
    }
}
