//! `airlockd node preflight|render|install`: from a node profile carried in a signed bundle to a
//! k3s GPU serving node. The work is in `airlock-node`; this module finds the profile among the
//! imported bundles, gathers what the appliance serves, prints, and writes install steps to the
//! audit log.

use std::path::Path;

use airlock_appliance::Appliance;
use airlock_core::node::NodeProfile;
use airlock_node::install::{self, StepRecord, StepStatus};
use airlock_node::k8s::{Endpoint, Role};
use airlock_node::preflight;
use airlock_node::render::{self, Content, Rendered};
use airlock_ui::exit;
use anyhow::{bail, Context, Result};

use super::{data, esc, open_reader, print_json, wait};
use crate::cli::{Cli, InstallArgs, NodeRole, NodeTarget, PreflightArgs, RenderArgs};

/// The profile `name` from the newest complete bundle that carries one by that name, with the
/// bundle's `name version (id)` for messages and the audit log.
fn find_profile(a: &Appliance, name: &str) -> Result<(NodeProfile, String)> {
    let bundles = a.catalog.bundles()?;
    let statements: std::collections::BTreeMap<String, Vec<u8>> =
        a.catalog.statements()?.into_iter().collect();
    // (first seen, sequence, label) of the bundle the chosen profile came from, and whether
    // that bundle's profiles passed the checks the connected side made before signing.
    type Found = ((String, u64, String), NodeProfile, Result<(), String>);
    let mut best: Option<Found> = None;
    let mut seen = std::collections::BTreeSet::new();
    for b in bundles.iter().filter(|b| b.complete) {
        let Some(st) = statements.get(&b.id) else {
            continue;
        };
        let Ok(st) = serde_json::from_slice::<airlock_core::bundle::Statement>(st) else {
            continue;
        };
        let m = st.predicate;
        let checked = airlock_core::node::check_profiles(
            &m.nodes,
            &airlock_core::node::Names::of_artifacts(&m.artifacts),
        );
        for p in m.nodes {
            seen.insert(esc(&p.name));
            let key = (
                b.first_seen.clone(),
                b.sequence,
                format!("{} {} ({})", esc(&b.name), esc(&b.version), b.id),
            );
            if p.name == name
                && best
                    .as_ref()
                    .is_none_or(|(o, _, _)| (&key.0, key.1) > (&o.0, o.1))
            {
                best = Some((key, p, checked.clone()));
            }
        }
    }
    match best {
        Some(((_, _, label), p, Ok(()))) => Ok((p, label)),
        Some(((_, _, label), _, Err(e))) => {
            bail!("bundle {label}: its node profiles do not pass the profile checks: {}", esc(&e))
        }
        None if seen.is_empty() => bail!("no imported bundle carries a node profile; add `nodes:` to the input manifest and import the bundle"),
        None => bail!(
            "no imported bundle carries node profile {:?} (profiles: {})",
            esc(name),
            seen.into_iter().collect::<Vec<_>>().join(", ")
        ),
    }
}

fn endpoint(t: &NodeTarget) -> Result<Endpoint> {
    let url = match &t.endpoint {
        Some(u) => u.clone(),
        None => {
            let names = airlock_appliance::tls::default_names();
            let host = names.get(3).map(String::as_str).unwrap_or("localhost");
            let port = t.listen.rsplit_once(':').map(|(_, p)| p).unwrap_or("5000");
            format!("https://{host}:{port}")
        }
    };
    Endpoint::parse(&url).map_err(anyhow::Error::msg)
}

fn role(t: &NodeTarget) -> Role {
    match t.role {
        NodeRole::Server => Role::Server,
        NodeRole::Agent => Role::Agent {
            server: t.server.clone().unwrap_or_default(),
            token_file: t.token_file.clone().unwrap_or_default(),
        },
    }
}

/// Renders `t.profile` under `root`.
fn do_render(cli: &Cli, t: &NodeTarget, root: &Path) -> Result<(Rendered, NodeProfile, String)> {
    let a = open_reader(cli)?;
    let (p, bundle) = find_profile(&a, &t.profile)?;
    let names = a.catalog.names()?;
    let snapshot = airlock_registry::index::Snapshot::build(
        &a.catalog,
        &a.store,
        &mut Default::default(),
        None,
    )?;
    let dir = data(cli)?;
    let ca_pem = std::fs::read(dir.join("tls/ca.pem")).ok();
    let apt_key = if p.gpu.is_some() {
        Some(
            airlock_registry::apt::AptKey::load_or_create(&dir.join("keys"))
                .context("the appliance apt signing key (DATA/keys)")?
                .public_armored,
        )
    } else {
        None
    };
    let content = Content {
        store: &a.store,
        names: &names,
        snapshot: &snapshot,
        ca_pem,
        apt_key,
        appliance_pub: std::fs::read_to_string(dir.join("keys/appliance.pub")).ok(),
    };
    if p.k3s.embedded_registry && t.role == NodeRole::Agent {
        tracing::info!("agents use the server's embedded registry mirror through registries.yaml");
    }
    std::fs::create_dir_all(root).with_context(|| format!("create {}", root.display()))?;
    let r = render::render(
        &p,
        &content,
        &render::Options {
            root: root.to_path_buf(),
            endpoint: endpoint(t)?,
            role: role(t),
            data_dir: t.node_data.clone(),
            listen: t.listen.clone(),
        },
    )?;
    Ok((r, p, bundle))
}

pub fn render(cli: &Cli, args: &RenderArgs) -> Result<u8> {
    let (r, _, bundle) = do_render(cli, &args.target, &args.root)?;
    if cli.json {
        print_json(&serde_json::json!({"bundle": bundle, "render": r}))?;
    } else {
        say!(
            "profile {} ({}, Kubernetes {}) from {} under {}",
            esc(&r.profile),
            r.role,
            r.kubernetes,
            esc(&bundle),
            esc(&r.root)
        );
        for f in &r.files {
            say!(
                "  {:<9} {} {:>12}  {}  ({})",
                if f.changed { "written" } else { "unchanged" },
                f.mode,
                f.size,
                esc(&f.path),
                esc(&f.from)
            );
        }
        if r.changed == 0 {
            say!("{} files, no change: already up to date", r.files.len());
        } else {
            say!("{} files, {} written", r.files.len(), r.changed);
        }
    }
    Ok(exit::OK)
}

pub fn preflight(cli: &Cli, args: &PreflightArgs) -> Result<u8> {
    let mut opts = preflight::Options {
        root: args.root.clone(),
        ..Default::default()
    };
    if let Some(name) = &args.profile {
        let a = open_reader(cli)?;
        let (p, _) = find_profile(&a, name)?;
        if let Some(g) = &p.gpu {
            let rec = render::closure_record(&a.store, &a.catalog.names()?, &g.debs)?;
            opts.kernel_headers = render::kernel_headers(&rec);
        }
    }
    let report = preflight::run(&opts);
    if cli.json {
        print_json(&report)?;
    } else {
        for g in &report.gpus {
            say!(
                "gpu {} {} {} driver {}",
                g.pci_address,
                g.device,
                g.name.as_deref().unwrap_or("(unknown model)"),
                g.driver.as_deref().unwrap_or("none")
            );
        }
        for c in &report.checks {
            let status = serde_json::to_value(c.status)?;
            say!(
                "{:<5} {:<15} {}",
                status.as_str().unwrap_or(""),
                c.id,
                esc(&c.detail)
            );
            if let Some(f) = &c.fix {
                say!("      fix: {}", esc(f));
            }
        }
    }
    Ok(if report.ok { exit::OK } else { exit::FAILED })
}

pub fn install(cli: &Cli, args: &InstallArgs) -> Result<u8> {
    let t = &args.target;
    let a = open_reader(cli)?;
    let (p, bundle) = find_profile(&a, &t.profile)?;
    let packages = match &p.gpu {
        Some(g) => render::closure_record(&a.store, &a.catalog.names()?, &g.debs)?.requested,
        None => Vec::new(),
    };
    drop(a);
    let plan = install::Plan {
        root: args.root.clone(),
        profile: p.name.clone(),
        gpu: p.gpu.is_some(),
        packages,
        // As on the node: under --root, which is / outside tests.
        apt_list: args.root.join(render::APT_LIST.trim_start_matches('/')),
        installer: args.root.join(render::INSTALLER.trim_start_matches('/')),
        workloads: if t.role == NodeRole::Server {
            p.workloads.iter().map(|w| w.name.clone()).collect()
        } else {
            Vec::new()
        },
        timeout_secs: args.timeout.div_ceil(1000),
        poll_secs: args.poll / 1000,
    };
    if args.dry_run {
        let steps = install::plan(&plan);
        if cli.json {
            print_json(&serde_json::json!({"profile": p.name, "bundle": bundle, "steps": steps}))?;
        } else {
            say!(
                "install profile {} from {} (dry run, nothing changed):",
                esc(&p.name),
                esc(&bundle)
            );
            say!("  0. render the node's files into {}", args.root.display());
            for (i, s) in steps.iter().enumerate() {
                say!("  {}. {}", i + 1, esc(&s.what));
                for c in &s.commands {
                    say!("       $ {}", esc(&c.join(" ")));
                }
            }
        }
        return Ok(exit::OK);
    }
    let (r, _, _) = do_render(cli, t, &args.root)?;
    tracing::info!(files = r.files.len(), changed = r.changed, "rendered");
    let dir = data(cli)?.to_path_buf();
    let mut audit_err = None;
    let mut on_step = |s: &StepRecord| {
        if audit_err.is_some() {
            return;
        }
        let res = Appliance::open(&dir, "node install", wait(cli)).and_then(|mut a| {
            a.audit(
                "node-install-step",
                serde_json::json!({
                    "profile": p.name, "bundle": bundle, "step": s.id, "status": s.status,
                    "detail": s.detail, "fix": s.fix, "seconds": s.seconds,
                }),
            )
        });
        if let Err(e) = res {
            audit_err = Some(e);
        }
        if !cli.json {
            let status = serde_json::to_value(s.status).unwrap_or_default();
            let id = serde_json::to_value(s.id).unwrap_or_default();
            eprintln!(
                "{:<16} {:<16} {}",
                status.as_str().unwrap_or(""),
                id.as_str().unwrap_or(""),
                esc(&s.detail)
            );
            if let Some(f) = &s.fix {
                eprintln!("{:<16} fix: {}", "", esc(f));
            }
        }
    };
    let pre_root = args.root.clone();
    let outcome = install::install(
        &plan,
        || {
            let rep = preflight::run(&preflight::Options {
                root: pre_root.clone(),
                ..Default::default()
            });
            if rep.ok {
                Ok(())
            } else {
                Err(rep
                    .checks
                    .iter()
                    .filter(|c| matches!(c.status, preflight::Status::Fail))
                    .map(|c| format!("{}: {}", c.id, c.fix.as_deref().unwrap_or(&c.detail)))
                    .collect::<Vec<_>>()
                    .join("; "))
            }
        },
        &install::SystemExec::default(),
        &mut on_step,
    )?;
    if let Some(e) = audit_err {
        return Err(e).context("recording the install steps in the audit log");
    }
    if cli.json {
        print_json(&serde_json::json!({
            "profile": p.name, "bundle": bundle, "complete": outcome.complete, "steps": outcome.steps,
        }))?;
    } else if outcome.complete {
        say!("node {} installed: every step done", esc(&p.name));
    } else if outcome
        .steps
        .iter()
        .any(|s| s.status == StepStatus::RebootRequired)
    {
        say!(
            "reboot required, then run `airlockd node install --profile {}` again: it resumes",
            esc(&p.name)
        );
    } else {
        say!("install stopped; fix what the failed step says and run it again: it resumes");
    }
    Ok(if outcome.complete {
        exit::OK
    } else {
        exit::FAILED
    })
}
