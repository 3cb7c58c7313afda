//! `airlockd node preflight`: can this machine become a k3s GPU serving node?
//!
//! Installing a node on a machine that cannot run one fails late and confusingly (DKMS cannot
//! build the driver, kubelet refuses to start with swap on, k3s cannot pick a node IP). Preflight
//! reads the machine first and says, check by check, what it saw and what to fix: NVIDIA GPUs
//! on the PCI bus, the loaded driver, nouveau, kernel headers in the bundle's closure, a default
//! route, swap, free disk space, the k3s ports and cgroup v2.
//!
//! Everything is read through [`Options::root`] (sysfs, procfs, statvfs), so tests run against
//! fixture trees. Every read is bounded; a missing, oversized or malformed file counts as absent
//! or unknown, never as a panic.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Largest sysfs or procfs file read whole (attributes, version strings, small tables).
const MAX_FILE_BYTES: u64 = 1 << 20;
/// Largest socket table read (`/proc/net/tcp*`); beyond it the ports check says it saw a prefix.
const MAX_TABLE_BYTES: u64 = 16 << 20;
/// Most PCI devices looked at.
const MAX_PCI_DEVICES: usize = 4096;
/// PCI vendor id of NVIDIA.
const NVIDIA_VENDOR: u32 = 0x10de;
/// TCP state `LISTEN` in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";
const GIB: u64 = 1 << 30;

/// What to check, and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// Root of the machine's filesystem: `/` normally, a fixture tree in tests.
    pub root: PathBuf,
    /// Where images and models go; the disk check measures its filesystem. Default
    /// `ROOT/var/lib` (or `ROOT` when that does not exist).
    pub data_dir: Option<PathBuf>,
    /// Kernel versions for which the GPU closure carries `linux-headers-<ver>`
    /// (`6.1.0-28-amd64`); empty when unknown.
    pub kernel_headers: Vec<String>,
    /// TCP ports the node needs free.
    pub ports: Vec<u16>,
    /// Least free space on the data filesystem; below twice this is a warning.
    pub min_free_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            root: PathBuf::from("/"),
            data_dir: None,
            kernel_headers: Vec::new(),
            ports: vec![6443, 10250],
            min_free_bytes: 20 * GIB,
        }
    }
}

/// Verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check: what was seen and, unless it passed, what to do.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `gpu`, `driver`, `nouveau`, `kernel-headers`, `default-route`, `swap`, `disk`, `ports`,
    /// `cgroup-v2`.
    pub id: &'static str,
    pub status: Status,
    /// What was seen.
    pub detail: String,
    /// What to do, for `warn` and `fail`.
    pub fix: Option<String>,
}

impl Check {
    fn ok(id: &'static str, detail: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(id: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(id: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// An NVIDIA display controller on the PCI bus.
#[derive(Debug, Clone, Serialize)]
pub struct Gpu {
    /// `0000:17:00.0`.
    pub pci_address: String,
    /// `0x10de`.
    pub vendor: String,
    /// `0x2330`, or `unknown` when the `device` file is unreadable.
    pub device: String,
    /// `0x030200` (3D controller) or `0x030000` (VGA).
    pub class: String,
    /// Marketing name of well-known device ids.
    pub name: Option<String>,
    /// Kernel driver bound to it: `nvidia`, `nouveau`, `vfio-pci`.
    pub driver: Option<String>,
}

/// Everything preflight saw, and whether the machine can become a node.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub root: String,
    /// Running kernel (`/proc/sys/kernel/osrelease`).
    pub kernel: Option<String>,
    /// Version of the loaded NVIDIA kernel module.
    pub driver_version: Option<String>,
    /// Sorted by PCI address.
    pub gpus: Vec<Gpu>,
    pub checks: Vec<Check>,
    /// True when no check failed.
    pub ok: bool,
}

/// Runs every check against `opts.root`.
pub fn run(opts: &Options) -> Report {
    let root = opts.root.as_path();
    let gpus = find_gpus(root);
    let kernel = read_small(&root.join("proc/sys/kernel/osrelease"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let driver_version = read_small(&root.join("proc/driver/nvidia/version"))
        .as_deref()
        .and_then(parse_driver_version);

    let checks = vec![
        check_gpu(root, &gpus),
        check_driver(root, driver_version.as_deref()),
        check_nouveau(root, &gpus),
        check_kernel_headers(root, kernel.as_deref(), &opts.kernel_headers),
        check_default_route(root),
        check_swap(root),
        check_disk(root, opts.data_dir.as_deref(), opts.min_free_bytes),
        check_ports(root, &opts.ports),
        check_cgroup_v2(root),
    ];
    let ok = checks.iter().all(|c| c.status != Status::Fail);
    Report {
        root: root.display().to_string(),
        kernel,
        driver_version,
        gpus,
        checks,
        ok,
    }
}

/// Reads at most `cap` bytes of `path`; returns the bytes and whether the file was longer.
fn read_capped(path: &Path, cap: u64) -> Option<(Vec<u8>, bool)> {
    let file = fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    file.take(cap + 1).read_to_end(&mut buf).ok()?;
    let truncated = buf.len() as u64 > cap;
    if truncated {
        buf.truncate(cap as usize);
    }
    Some((buf, truncated))
}

/// A small text file whole; `None` when missing, larger than [`MAX_FILE_BYTES`] or not UTF-8.
fn read_small(path: &Path) -> Option<String> {
    match read_capped(path, MAX_FILE_BYTES)? {
        (bytes, false) => String::from_utf8(bytes).ok(),
        (_, true) => None,
    }
}

/// A line-oriented table (procfs); lossy, and cut back to its last whole line when truncated.
fn read_table(path: &Path, cap: u64) -> Option<(String, bool)> {
    let (mut bytes, truncated) = read_capped(path, cap)?;
    if truncated {
        let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(end);
    }
    Some((String::from_utf8_lossy(&bytes).into_owned(), truncated))
}

/// A sysfs hex attribute (`0x10de\n`).
fn read_hex(path: &Path) -> Option<u32> {
    let text = read_small(path)?;
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

fn find_gpus(root: &Path) -> Vec<Gpu> {
    let Ok(entries) = fs::read_dir(root.join("sys/bus/pci/devices")) else {
        return Vec::new();
    };
    let mut gpus: Vec<Gpu> = entries
        .take(MAX_PCI_DEVICES)
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let dir = entry.path();
            let vendor = read_hex(&dir.join("vendor"))?;
            let class = read_hex(&dir.join("class"))?;
            if vendor != NVIDIA_VENDOR || class >> 16 != 0x03 {
                return None;
            }
            let device = read_hex(&dir.join("device")).filter(|d| *d <= 0xffff);
            let driver = fs::read_link(dir.join("driver"))
                .ok()
                .and_then(|target| target.file_name().map(|n| n.to_string_lossy().into_owned()));
            Some(Gpu {
                pci_address: entry.file_name().to_string_lossy().into_owned(),
                vendor: format!("0x{vendor:04x}"),
                device: device.map_or_else(|| "unknown".to_string(), |d| format!("0x{d:04x}")),
                class: format!("0x{class:06x}"),
                name: device.and_then(gpu_name).map(str::to_string),
                driver,
            })
        })
        .collect();
    gpus.sort_by(|a, b| a.pci_address.cmp(&b.pci_address));
    gpus
}

/// Names of well-known NVIDIA data-centre device ids.
fn gpu_name(device: u32) -> Option<&'static str> {
    Some(match device {
        0x2330 => "H100 SXM5 80GB",
        0x2331 => "H100 PCIe",
        0x2335 => "H200",
        0x20b0 | 0x20b2 => "A100 SXM4",
        0x20b5 => "A100 80GB PCIe",
        0x20f1 => "A100 PCIe 40GB",
        0x26b9 => "L40S",
        0x27b8 => "L4",
        0x1eb8 => "T4",
        _ => return None,
    })
}

/// The version in the first line of `/proc/driver/nvidia/version`
/// (`NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.127.05  Thu Oct 10 ...`).
fn parse_driver_version(text: &str) -> Option<String> {
    text.lines()
        .next()?
        .split_whitespace()
        .find(|word| {
            word.starts_with(|c: char| c.is_ascii_digit())
                && word.contains('.')
                && word.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
        .map(str::to_string)
}

fn describe_gpu(gpu: &Gpu) -> String {
    let name = gpu.name.as_deref().unwrap_or("unknown model");
    let driver = gpu.driver.as_deref().unwrap_or("no driver");
    format!("{} {name} ({}), {driver}", gpu.pci_address, gpu.device)
}

fn check_gpu(root: &Path, gpus: &[Gpu]) -> Check {
    const ID: &str = "gpu";
    let devices = root.join("sys/bus/pci/devices");
    if gpus.is_empty() {
        return Check::fail(
            ID,
            format!(
                "no NVIDIA GPU (PCI vendor 0x10de, class 0x03xxxx) found under {}",
                devices.display()
            ),
            "a CPU-only node needs a profile without gpu:",
        );
    }
    let seen = gpus.iter().map(describe_gpu).collect::<Vec<_>>().join("; ");
    let detail = format!("{} NVIDIA GPU(s): {seen}", gpus.len());
    let passthrough: Vec<&str> = gpus
        .iter()
        .filter(|g| g.driver.as_deref() == Some("vfio-pci"))
        .map(|g| g.pci_address.as_str())
        .collect();
    if passthrough.is_empty() {
        Check::ok(ID, detail)
    } else {
        Check::warn(
            ID,
            detail,
            format!(
                "{} bound to vfio-pci (reserved for VM passthrough); remove the device id from \
                 vfio-pci.ids= on the kernel command line or /etc/modprobe.d and reboot so the \
                 nvidia driver can bind it",
                passthrough.join(", ")
            ),
        )
    }
}

fn check_driver(root: &Path, version: Option<&str>) -> Check {
    const ID: &str = "driver";
    let path = root.join("proc/driver/nvidia/version");
    match version {
        Some(v) => Check::ok(ID, format!("NVIDIA driver {v} loaded")),
        None => Check::warn(
            ID,
            format!("no NVIDIA driver version in {}", path.display()),
            "the NVIDIA driver is not loaded; `airlockd node install` installs it from the \
             bundle's closure, then a reboot may be required",
        ),
    }
}

fn check_nouveau(root: &Path, gpus: &[Gpu]) -> Check {
    const ID: &str = "nouveau";
    let module = root.join("sys/module/nouveau");
    let in_modules = read_table(&root.join("proc/modules"), MAX_FILE_BYTES)
        .is_some_and(|(text, _)| text.lines().any(|l| l.starts_with("nouveau ")));
    let bound: Vec<&str> = gpus
        .iter()
        .filter(|g| g.driver.as_deref() == Some("nouveau"))
        .map(|g| g.pci_address.as_str())
        .collect();
    if !module.exists() && !in_modules {
        return Check::ok(ID, "nouveau is not loaded");
    }
    let mut detail = "nouveau is loaded".to_string();
    if !bound.is_empty() {
        detail.push_str(&format!(" and bound to {}", bound.join(", ")));
    }
    Check::fail(
        ID,
        detail,
        "blacklist nouveau: write /etc/modprobe.d/blacklist-nouveau.conf with the lines \
         `blacklist nouveau` and `options nouveau modeset=0`, run `update-initramfs -u`, then \
         reboot",
    )
}

fn check_kernel_headers(root: &Path, kernel: Option<&str>, headers: &[String]) -> Check {
    const ID: &str = "kernel-headers";
    if headers.is_empty() {
        return Check::warn(
            ID,
            format!(
                "unknown: the closure's kernel headers are not known; running kernel {}",
                kernel.unwrap_or("unknown")
            ),
            "check that the bundle's debs closure carries linux-headers for the running kernel, \
             or DKMS cannot build the NVIDIA driver",
        );
    }
    let carried = headers.join(", ");
    let Some(kernel) = kernel else {
        return Check::warn(
            ID,
            format!(
                "running kernel unknown ({} unreadable); the closure carries headers for \
                 {carried}",
                root.join("proc/sys/kernel/osrelease").display()
            ),
            format!("boot one of the kernels {carried} so DKMS can build the driver"),
        );
    };
    if headers.iter().any(|h| h == kernel) {
        return Check::ok(
            ID,
            format!("the closure carries linux-headers-{kernel} for the running kernel"),
        );
    }
    let first = &headers[0];
    Check::fail(
        ID,
        format!("the closure carries headers for {carried} but the running kernel is {kernel}"),
        format!(
            "DKMS cannot build the driver; add linux-headers-{kernel} to the debs closure or \
             boot kernel {first}"
        ),
    )
}

fn check_default_route(root: &Path) -> Check {
    const ID: &str = "default-route";
    const FIX: &str = "k3s needs a default route to pick its node IP; an isolated node without \
                       one can add a route to a dummy interface: `ip link add dummy0 type dummy; \
                       ip addr add 10.255.255.1/32 dev dummy0; ip link set dummy0 up; ip route \
                       add default dev dummy0`, or set node-ip in the profile config";
    let path = root.join("proc/net/route");
    let Some((text, _)) = read_table(&path, MAX_FILE_BYTES) else {
        return Check::fail(ID, format!("{} is unreadable", path.display()), FIX);
    };
    let iface = text.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let iface = fields.next()?;
        (fields.next()? == "00000000").then_some(iface)
    });
    match iface {
        Some(iface) => Check::ok(ID, format!("IPv4 default route via {iface}")),
        None => Check::fail(ID, "no IPv4 default route", FIX),
    }
}

fn check_swap(root: &Path) -> Check {
    const ID: &str = "swap";
    let path = root.join("proc/swaps");
    let Some((text, _)) = read_table(&path, MAX_FILE_BYTES) else {
        return Check::ok(ID, format!("{} absent: no swap support", path.display()));
    };
    let swaps: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    if swaps.is_empty() {
        return Check::ok(ID, "swap is off");
    }
    Check::warn(
        ID,
        format!("swap is on: {}", swaps.join(", ")),
        "kubelet's default configuration fails to start with swap on: run `swapoff -a` and \
         remove the swap entries from /etc/fstab",
    )
}

fn check_disk(root: &Path, data_dir: Option<&Path>, min_free: u64) -> Check {
    const ID: &str = "disk";
    let target = match data_dir {
        Some(dir) => dir.to_path_buf(),
        None => {
            let var_lib = root.join("var/lib");
            if var_lib.is_dir() {
                var_lib
            } else {
                root.to_path_buf()
            }
        }
    };
    // A data directory not created yet lands on the filesystem of its nearest existing parent.
    let Some(existing) = target.ancestors().find(|p| p.exists()) else {
        return Check::warn(
            ID,
            format!("{} does not exist", target.display()),
            "create the data directory, then run preflight again",
        );
    };
    let stat = match rustix::fs::statvfs(existing) {
        Ok(stat) => stat,
        Err(e) => {
            return Check::warn(
                ID,
                format!("statvfs {}: {e}", existing.display()),
                "check that the data directory is readable, then run preflight again",
            )
        }
    };
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    let detail = format!(
        "{} free on the filesystem of {} (need {})",
        human(free),
        existing.display(),
        human(min_free)
    );
    let fix = format!(
        "free space on that filesystem or point the data directory at one with at least {} \
         free: images and models are unpacked there",
        human(min_free.saturating_mul(2))
    );
    if free < min_free {
        Check::fail(ID, detail, fix)
    } else if free < min_free.saturating_mul(2) {
        Check::warn(ID, detail, fix)
    } else {
        Check::ok(ID, detail)
    }
}

fn human(bytes: u64) -> String {
    if bytes >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// Ports in LISTEN state in one `/proc/net/tcp`-format table.
fn listening_ports(text: &str) -> impl Iterator<Item = u16> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1)?;
        let state = fields.nth(1)?;
        if state != TCP_LISTEN {
            return None;
        }
        let (_, port) = local.rsplit_once(':')?;
        u16::from_str_radix(port, 16).ok()
    })
}

fn port_role(port: u16) -> &'static str {
    match port {
        6443 => "k3s API server",
        10250 => "kubelet",
        _ => "needed by the node",
    }
}

fn check_ports(root: &Path, wanted: &[u16]) -> Check {
    const ID: &str = "ports";
    let mut read_any = false;
    let mut truncated = false;
    let mut listening = BTreeSet::new();
    for table in ["proc/net/tcp", "proc/net/tcp6"] {
        if let Some((text, cut)) = read_table(&root.join(table), MAX_TABLE_BYTES) {
            read_any = true;
            truncated |= cut;
            listening.extend(listening_ports(&text).filter(|p| wanted.contains(p)));
        }
    }
    let list = |ports: &mut dyn Iterator<Item = &u16>| {
        ports.map(u16::to_string).collect::<Vec<_>>().join(", ")
    };
    if !read_any {
        return Check::warn(
            ID,
            format!(
                "{} and {} are unreadable",
                root.join("proc/net/tcp").display(),
                root.join("proc/net/tcp6").display()
            ),
            format!(
                "check by hand that nothing listens on {}",
                list(&mut wanted.iter())
            ),
        );
    }
    if !listening.is_empty() {
        let fix = listening
            .iter()
            .map(|p| {
                format!(
                    "port {p} is in use ({}); stop what listens there",
                    port_role(*p)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Check::fail(
            ID,
            format!("listening: {}", list(&mut listening.iter())),
            fix,
        );
    }
    if truncated {
        return Check::warn(
            ID,
            format!(
                "none of {} listening in the first {} MiB of the socket tables",
                list(&mut wanted.iter()),
                MAX_TABLE_BYTES >> 20
            ),
            format!(
                "check by hand that nothing listens on {}",
                list(&mut wanted.iter())
            ),
        );
    }
    Check::ok(ID, format!("{} free", list(&mut wanted.iter())))
}

fn check_cgroup_v2(root: &Path) -> Check {
    const ID: &str = "cgroup-v2";
    let path = root.join("sys/fs/cgroup/cgroup.controllers");
    if path.is_file() {
        Check::ok(ID, "cgroup v2 (unified hierarchy) is mounted")
    } else {
        Check::fail(
            ID,
            format!("{} is absent: not cgroup v2", path.display()),
            "boot with systemd.unified_cgroup_hierarchy=1 on the kernel command line \
             (GRUB_CMDLINE_LINUX in /etc/default/grub, then `update-grub` and reboot)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture tree in a temporary directory.
    struct Tree(tempfile::TempDir);

    impl Tree {
        fn new() -> Tree {
            Tree(tempfile::tempdir().unwrap())
        }

        fn root(&self) -> &Path {
            self.0.path()
        }

        fn file(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Tree {
            let path = self.root().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
            self
        }

        fn link(&self, rel: &str, target: &str) -> &Tree {
            let path = self.root().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, path).unwrap();
            self
        }

        fn remove(&self, rel: &str) -> &Tree {
            fs::remove_file(self.root().join(rel)).unwrap();
            self
        }

        fn pci(&self, addr: &str, vendor: &str, device: &str, class: &str) -> &Tree {
            let dir = format!("sys/bus/pci/devices/{addr}");
            self.file(&format!("{dir}/vendor"), format!("{vendor}\n"))
                .file(&format!("{dir}/device"), format!("{device}\n"))
                .file(&format!("{dir}/class"), format!("{class}\n"))
        }

        fn options(&self) -> Options {
            Options {
                root: self.root().to_path_buf(),
                kernel_headers: vec![KERNEL.to_string()],
                min_free_bytes: 0,
                ..Options::default()
            }
        }
    }

    const KERNEL: &str = "6.1.0-28-amd64";
    const VERSION: &str = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.127.05  Thu Oct \
                           10 03:43:30 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian \
                           12.2.0-14)\n";
    const TCP_HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when \
                              retrnsmt   uid  timeout inode\n";
    const ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\t\
                         Window\tIRTT\n\
                         eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                         eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n";
    const SWAPS_HEADER: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

    /// A machine ready to become a node: one H100 bound to nvidia, everything else in order.
    fn h100() -> Tree {
        let tree = Tree::new();
        tree.pci("0000:17:00.0", "0x10de", "0x2330", "0x030200")
            .link(
                "sys/bus/pci/devices/0000:17:00.0/driver",
                "../../../bus/pci/drivers/nvidia",
            )
            .pci("0000:00:02.0", "0x8086", "0x0d26", "0x060000")
            .file("proc/driver/nvidia/version", VERSION)
            .file("proc/sys/kernel/osrelease", format!("{KERNEL}\n"))
            .file("proc/net/route", ROUTE)
            .file("proc/net/tcp", TCP_HEADER)
            .file("proc/net/tcp6", TCP_HEADER)
            .file("proc/swaps", SWAPS_HEADER)
            .file(
                "proc/modules",
                "nvidia 56852480 0 - Live 0x0000000000000000\n",
            )
            .file(
                "sys/fs/cgroup/cgroup.controllers",
                "cpuset cpu io memory hugetlb pids rdma misc\n",
            );
        tree
    }

    fn check<'r>(report: &'r Report, id: &str) -> &'r Check {
        report
            .checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no check {id}"))
    }

    #[test]
    fn ready_h100_node_passes() {
        let tree = h100();
        let report = run(&tree.options());
        assert!(report.ok, "{report:#?}");
        assert!(
            report.checks.iter().all(|c| c.status == Status::Ok),
            "{report:#?}"
        );
        assert_eq!(report.driver_version.as_deref(), Some("550.127.05"));
        assert_eq!(report.kernel.as_deref(), Some(KERNEL));
        assert_eq!(report.gpus.len(), 1);
        let gpu = &report.gpus[0];
        assert_eq!(gpu.pci_address, "0000:17:00.0");
        assert_eq!(gpu.vendor, "0x10de");
        assert_eq!(gpu.device, "0x2330");
        assert_eq!(gpu.class, "0x030200");
        assert_eq!(gpu.name.as_deref(), Some("H100 SXM5 80GB"));
        assert_eq!(gpu.driver.as_deref(), Some("nvidia"));
        let ids: Vec<&str> = report.checks.iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            [
                "gpu",
                "driver",
                "nouveau",
                "kernel-headers",
                "default-route",
                "swap",
                "disk",
                "ports",
                "cgroup-v2"
            ]
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"][0]["status"], "ok");
        assert_eq!(json["gpus"][0]["name"], "H100 SXM5 80GB");
    }

    #[test]
    fn nouveau_bound_gpu_fails() {
        let tree = Tree::new();
        tree.pci("0000:3b:00.0", "0x10de", "0x1eb8", "0x030000")
            .link(
                "sys/bus/pci/devices/0000:3b:00.0/driver",
                "../../../bus/pci/drivers/nouveau",
            )
            .file("sys/module/nouveau/initstate", "live\n")
            .file("sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
            .file("proc/net/route", ROUTE);
        let report = run(&tree.options());
        assert!(!report.ok);
        let nouveau = check(&report, "nouveau");
        assert_eq!(nouveau.status, Status::Fail);
        assert!(nouveau.detail.contains("0000:3b:00.0"), "{nouveau:?}");
        assert!(nouveau
            .fix
            .as_deref()
            .unwrap()
            .contains("blacklist nouveau"));
        assert_eq!(check(&report, "driver").status, Status::Warn);
        assert_eq!(check(&report, "gpu").status, Status::Ok);
        assert_eq!(report.gpus[0].name.as_deref(), Some("T4"));
        assert_eq!(report.gpus[0].driver.as_deref(), Some("nouveau"));
        assert_eq!(report.driver_version, None);
    }

    #[test]
    fn nouveau_in_proc_modules_counts() {
        let tree = h100();
        tree.file(
            "proc/modules",
            "drm 1 0 - Live 0x0\nnouveau 2936832 0 - Live 0x0\n",
        );
        assert_eq!(check(&run(&tree.options()), "nouveau").status, Status::Fail);
    }

    #[test]
    fn no_nvidia_gpu_fails() {
        let tree = Tree::new();
        tree.pci("0000:00:02.0", "0x8086", "0x46a6", "0x030000")
            .link(
                "sys/bus/pci/devices/0000:00:02.0/driver",
                "../../../bus/pci/drivers/i915",
            );
        let report = run(&tree.options());
        assert!(!report.ok);
        assert!(report.gpus.is_empty());
        let gpu = check(&report, "gpu");
        assert_eq!(gpu.status, Status::Fail);
        assert!(gpu.detail.contains("no NVIDIA GPU"), "{gpu:?}");
        assert!(gpu.fix.as_deref().unwrap().contains("without gpu:"));
        // Everything else is simply absent: no panic, and failures say so.
        assert_eq!(check(&report, "cgroup-v2").status, Status::Fail);
        assert_eq!(check(&report, "default-route").status, Status::Fail);
        assert_eq!(check(&report, "ports").status, Status::Warn);
    }

    #[test]
    fn listening_port_fails_other_states_do_not() {
        let tree = h100();
        tree.file(
            "proc/net/tcp",
            format!(
                "{TCP_HEADER}   0: 00000000:192B 00000000:0000 0A 00000000:00000000 \
                 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   \
                 1: 0100007F:280A 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     \
                 0        0 12346 1 0000000000000000 20 4 30 10 -1\n"
            ),
        );
        let report = run(&tree.options());
        assert!(!report.ok);
        let ports = check(&report, "ports");
        assert_eq!(ports.status, Status::Fail);
        let fix = ports.fix.as_deref().unwrap();
        assert!(
            fix.contains("port 6443 is in use (k3s API server)"),
            "{fix}"
        );
        assert!(!fix.contains("10250"), "{fix}");
        assert!(!ports.detail.contains("10250"), "{ports:?}");
    }

    #[test]
    fn listening_port_in_tcp6_fails() {
        let tree = h100();
        tree.file(
            "proc/net/tcp6",
            format!(
                "{TCP_HEADER}   0: 00000000000000000000000000000000:280A \
                 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 \
                 00000000     0        0 23456 1 0000000000000000 100 0 0 10 0\n"
            ),
        );
        let ports = run(&tree.options()).checks.remove(7);
        assert_eq!(ports.id, "ports");
        assert_eq!(ports.status, Status::Fail);
        assert!(ports
            .fix
            .unwrap()
            .contains("port 10250 is in use (kubelet)"));
    }

    #[test]
    fn header_mismatch_fails_and_swap_warns() {
        let tree = h100();
        tree.file("proc/sys/kernel/osrelease", "6.1.0-31-amd64\n")
            .file(
                "proc/swaps",
                format!("{SWAPS_HEADER}/dev/sda3 partition\t8388604\t0\t-2\n"),
            );
        let opts = Options {
            kernel_headers: vec![KERNEL.to_string(), "6.1.0-29-amd64".to_string()],
            ..tree.options()
        };
        let report = run(&opts);
        assert!(!report.ok);
        let headers = check(&report, "kernel-headers");
        assert_eq!(headers.status, Status::Fail);
        let text = format!("{} {}", headers.detail, headers.fix.as_deref().unwrap());
        assert!(text.contains(KERNEL), "{text}");
        assert!(text.contains("6.1.0-31-amd64"), "{text}");
        assert!(text.contains("linux-headers-6.1.0-31-amd64"), "{text}");
        let swap = check(&report, "swap");
        assert_eq!(swap.status, Status::Warn);
        assert!(swap.detail.contains("/dev/sda3"));
        assert!(swap.fix.as_deref().unwrap().contains("swapoff -a"));
    }

    #[test]
    fn unknown_headers_warn() {
        let tree = h100();
        let opts = Options {
            kernel_headers: Vec::new(),
            ..tree.options()
        };
        let report = run(&opts);
        let headers = check(&report, "kernel-headers");
        assert_eq!(headers.status, Status::Warn);
        assert!(headers.detail.contains("unknown"));
        assert!(report.ok);
    }

    #[test]
    fn disk_thresholds() {
        let tree = h100();
        let huge = Options {
            min_free_bytes: u64::MAX / 4,
            ..tree.options()
        };
        let disk = check(&run(&huge), "disk").clone();
        assert_eq!(disk.status, Status::Fail);
        assert!(disk.fix.is_some());
        // A data directory that does not exist yet is measured on its nearest existing parent.
        let pending = Options {
            data_dir: Some(tree.root().join("srv/airlock/data")),
            ..tree.options()
        };
        assert_eq!(check(&run(&pending), "disk").status, Status::Ok);
    }

    #[test]
    fn missing_route_and_cgroup_fail() {
        let tree = h100();
        tree.file("proc/net/route", &ROUTE[..ROUTE.find('\n').unwrap() + 1])
            .remove("sys/fs/cgroup/cgroup.controllers");
        let report = run(&tree.options());
        let route = check(&report, "default-route");
        assert_eq!(route.status, Status::Fail);
        assert!(route.fix.as_deref().unwrap().contains("dummy0"));
        let cgroup = check(&report, "cgroup-v2");
        assert_eq!(cgroup.status, Status::Fail);
        assert!(cgroup
            .fix
            .as_deref()
            .unwrap()
            .contains("systemd.unified_cgroup_hierarchy=1"));
    }

    #[test]
    fn garbage_and_oversized_files_are_unknown() {
        let tree = Tree::new();
        // An oversized vendor file: the device is not recognised.
        tree.pci("0000:17:00.0", "0x10de", "0x2330", "0x030200")
            .file(
                "sys/bus/pci/devices/0000:17:00.0/vendor",
                vec![b'0'; 2 << 20],
            )
            // Non-hex vendor and class.
            .pci("0000:18:00.0", "nvidia", "0x2330", "display")
            // A real GPU whose device id is garbage and whose class has junk around it.
            .pci("0000:65:00.0", "0x10de", "0xzz\u{0}\u{ff}", "0x030200")
            .file(
                "sys/bus/pci/devices/0000:19:00.0/vendor",
                [0xff, 0xfe, 0x00],
            )
            .file("proc/driver/nvidia/version", [0xc3, 0x28, 0xa0, 0xa1])
            .file("proc/sys/kernel/osrelease", vec![b'x'; 2 << 20])
            .file("proc/net/route", "garbage\n\n\u{0}\u{0}00000000\n")
            .file(
                "proc/net/tcp",
                "\n:::\n 0: zz:zz 0A\n 1: 00:GGGG 00:0000 0A\n 2: 00:192B\n 3: 00:1:2B 0:0 0A\n",
            )
            .file("proc/net/tcp6", [0xff, 0x0a, 0xfe])
            .file("proc/swaps", "")
            .file("proc/modules", [0x80; 64]);
        let report = run(&tree.options());
        assert_eq!(report.gpus.len(), 1, "{:#?}", report.gpus);
        let gpu = &report.gpus[0];
        assert_eq!(gpu.pci_address, "0000:65:00.0");
        assert_eq!(gpu.device, "unknown");
        assert_eq!(gpu.name, None);
        assert_eq!(gpu.driver, None);
        assert_eq!(report.kernel, None);
        assert_eq!(report.driver_version, None);
        assert_eq!(check(&report, "driver").status, Status::Warn);
        assert_eq!(check(&report, "kernel-headers").status, Status::Warn);
        assert_eq!(check(&report, "default-route").status, Status::Fail);
        assert_eq!(check(&report, "ports").status, Status::Ok);
        assert_eq!(check(&report, "swap").status, Status::Ok);
        assert_eq!(check(&report, "nouveau").status, Status::Ok);
    }

    #[test]
    fn gpus_sorted_and_vfio_warns() {
        let tree = h100();
        tree.pci("0000:0a:00.0", "0x10de", "0x2335", "0x030200")
            .link(
                "sys/bus/pci/devices/0000:0a:00.0/driver",
                "../../../bus/pci/drivers/vfio-pci",
            );
        let report = run(&tree.options());
        let addrs: Vec<&str> = report.gpus.iter().map(|g| g.pci_address.as_str()).collect();
        assert_eq!(addrs, ["0000:0a:00.0", "0000:17:00.0"]);
        assert_eq!(report.gpus[0].name.as_deref(), Some("H200"));
        let gpu = check(&report, "gpu");
        assert_eq!(gpu.status, Status::Warn);
        assert!(gpu.fix.as_deref().unwrap().contains("0000:0a:00.0"));
    }

    #[test]
    fn driver_version_formats() {
        assert_eq!(parse_driver_version(VERSION).as_deref(), Some("550.127.05"));
        assert_eq!(
            parse_driver_version(
                "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  565.57.01  Release \
                 Build  (dvs-builder@U16-I3-B03-4-3)  Tue Oct  1 21:25:04 UTC 2024"
            )
            .as_deref(),
            Some("565.57.01")
        );
        assert_eq!(parse_driver_version(""), None);
        assert_eq!(parse_driver_version("NVRM version: unknown"), None);
    }

    /// The fixture trees under `tests/fixtures/preflight` keep the verdicts they document.
    #[test]
    fn committed_fixtures() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preflight");
        let opts = |name: &str| Options {
            root: base.join(name),
            kernel_headers: vec![KERNEL.to_string()],
            min_free_bytes: 0,
            ..Options::default()
        };

        let h100 = run(&opts("h100"));
        assert!(h100.ok, "{h100:#?}");
        assert!(
            h100.checks.iter().all(|c| c.status == Status::Ok),
            "{h100:#?}"
        );
        assert_eq!(h100.gpus.len(), 1);
        assert_eq!(h100.gpus[0].name.as_deref(), Some("H100 SXM5 80GB"));
        assert_eq!(h100.gpus[0].driver.as_deref(), Some("nvidia"));
        assert_eq!(h100.driver_version.as_deref(), Some("550.127.05"));
        assert_eq!(h100.kernel.as_deref(), Some(KERNEL));

        let nouveau = run(&opts("nouveau"));
        assert!(!nouveau.ok);
        assert_eq!(check(&nouveau, "nouveau").status, Status::Fail);
        assert_eq!(check(&nouveau, "driver").status, Status::Warn);
        assert_eq!(check(&nouveau, "gpu").status, Status::Ok);
        assert_eq!(nouveau.gpus[0].driver.as_deref(), Some("nouveau"));
        let failed: Vec<&str> = nouveau
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.id)
            .collect();
        assert_eq!(failed, ["nouveau"]);

        let no_gpu = run(&opts("no-gpu"));
        assert!(!no_gpu.ok);
        assert!(no_gpu.gpus.is_empty());
        let failed: Vec<&str> = no_gpu
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.id)
            .collect();
        assert_eq!(failed, ["gpu"]);
    }
}
