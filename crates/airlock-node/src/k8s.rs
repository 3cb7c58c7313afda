//! The k3s configuration and Kubernetes manifests of a node profile, as text.
//!
//! * `registries.yaml` mirrors every upstream registry of the appliance's images (and `"*"`)
//!   to the appliance, with its CA, so pods keep their upstream image references and pull
//!   from the appliance when an image is not preloaded.
//! * `config.yaml` labels a GPU node `nvidia.com/gpu.present=true`, turns on the embedded
//!   registry mirror on a server (nodes share layers peer to peer), and merges the profile's
//!   own keys.
//! * Manifests k3s applies from `server/manifests/`: the `airlock` namespace, the `nvidia`
//!   `RuntimeClass`, the NVIDIA device plugin `DaemonSet` (with `runtimeClassName: nvidia`,
//!   without which it cannot load NVML), and per workload a `Deployment` and `Service`.
//!
//! Workloads never download at pod start. By default the model is staged on the node's disk
//! and mounted read-only by `hostPath` with `HF_HUB_OFFLINE=1`; with `modelDelivery: endpoint`
//! an init container of the workload's own image fetches it from the appliance's Hugging Face
//! endpoint into an `emptyDir`. Everything is built as JSON values and printed as YAML, so the
//! output is a pure function of its inputs.

use std::collections::{BTreeMap, BTreeSet};

use airlock_core::node::{image_key, ModelDelivery, NodeProfile, Runtime, Workload};
use serde_json::{json, Value};

/// Namespace of the workloads.
pub const NAMESPACE: &str = "airlock";
/// Where the appliance CA is written on the node (`configs.<host>.tls.ca_file`).
pub const CA_FILE: &str = "/etc/rancher/k3s/airlock-ca.pem";
/// Where hostPath-delivered models are staged on the node.
pub const MODELS_DIR: &str = "/var/lib/airlock/models";
/// Node label of GPU nodes (the device plugin and GPU workloads select it).
pub const GPU_LABEL: &str = "nvidia.com/gpu.present";
/// The device plugin's name in `kube-system`.
pub const DEVICE_PLUGIN: &str = "nvidia-device-plugin-daemonset";

/// What a rendered node is in its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Runs the k3s server (the API server and the manifests) on the appliance.
    Server,
    /// Joins the server at `server` (`https://HOST:6443`) with the token in `token_file`.
    Agent { server: String, token_file: String },
}

/// The appliance endpoint as nodes reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://HOST:PORT` without a trailing slash.
    pub url: String,
    /// `HOST:PORT` (the `configs` key of registries.yaml).
    pub host: String,
}

impl Endpoint {
    /// Parses `http(s)://HOST[:PORT][/]`.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let u = url.trim_end_matches('/');
        let rest = u
            .strip_prefix("https://")
            .or_else(|| u.strip_prefix("http://"))
            .ok_or_else(|| format!("endpoint {url:?} must start with https:// or http://"))?;
        if rest.is_empty()
            || rest.contains('/')
            || rest.contains('@')
            || rest.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "endpoint {url:?} must be a scheme and HOST[:PORT] only"
            ));
        }
        Ok(Endpoint {
            url: u.to_string(),
            host: rest.to_string(),
        })
    }
}

/// YAML of one value (a mapping at the top).
pub fn yaml(v: &Value) -> String {
    serde_norway::to_string(v).expect("JSON values print as YAML")
}

/// YAML stream of several documents.
pub fn yaml_docs(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| format!("---\n{}", yaml(d)))
        .collect::<String>()
}

/// `/etc/rancher/k3s/registries.yaml`: every registry in `upstreams` and `"*"` mirrored to
/// the appliance.
pub fn registries_yaml(upstreams: &BTreeSet<String>, ep: &Endpoint) -> String {
    let mut mirrors = serde_json::Map::new();
    for r in upstreams.iter().map(String::as_str).chain(["*"]) {
        mirrors.insert(r.to_string(), json!({"endpoint": [ep.url]}));
    }
    let mut configs = serde_json::Map::new();
    if ep.url.starts_with("https://") {
        configs.insert(ep.host.clone(), json!({"tls": {"ca_file": CA_FILE}}));
    }
    let mut doc = json!({"mirrors": mirrors});
    if !configs.is_empty() {
        doc["configs"] = Value::Object(configs);
    }
    format!(
        "# Written by airlockd node render: pulls go to the appliance under their upstream names.\n{}",
        yaml(&doc)
    )
}

/// `/etc/rancher/k3s/config.yaml`.
pub fn config_yaml(p: &NodeProfile, role: &Role) -> String {
    let mut m: BTreeMap<String, Value> = p.k3s.config.clone().into_iter().collect();
    if p.gpu.is_some() {
        let label = format!("{GPU_LABEL}=true");
        let mut labels: Vec<Value> = match m.remove("node-label") {
            Some(Value::Array(a)) => a,
            Some(v) => vec![v],
            None => vec![],
        };
        if !labels.iter().any(|l| l.as_str() == Some(label.as_str())) {
            labels.push(Value::String(label));
        }
        m.insert("node-label".into(), Value::Array(labels));
    }
    match role {
        Role::Server => {
            if p.k3s.embedded_registry {
                m.insert("embedded-registry".into(), json!(true));
            }
            m.entry("write-kubeconfig-mode".into())
                .or_insert(json!("0600"));
        }
        Role::Agent { server, token_file } => {
            // Server-only keys in a profile do not belong on an agent.
            for k in [
                "disable",
                "embedded-registry",
                "write-kubeconfig-mode",
                "cluster-init",
            ] {
                m.remove(k);
            }
            m.insert("server".into(), json!(server));
            m.insert("token-file".into(), json!(token_file));
        }
    }
    format!(
        "# Written by airlockd node render from profile {}.\n{}",
        p.name,
        yaml(&Value::Object(m.into_iter().collect()))
    )
}

/// The manifests of a server node, as (RFC 1123 file name, YAML).
/// `revisions` maps each workload model to the revision staged on the node.
pub fn manifests(
    p: &NodeProfile,
    ep: &Endpoint,
    revisions: &BTreeMap<String, String>,
    appliance_pub: Option<&str>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !p.workloads.is_empty() || p.appliance.is_some() {
        out.push((
            "airlock-namespace.yaml".to_string(),
            yaml_docs(&[json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": NAMESPACE, "labels": managed()},
            })]),
        ));
    }
    if let Some(g) = &p.gpu {
        out.push((
            "airlock-runtimeclass-nvidia.yaml".to_string(),
            yaml_docs(&[json!({
                "apiVersion": "node.k8s.io/v1",
                "kind": "RuntimeClass",
                "metadata": {"name": "nvidia", "labels": managed()},
                "handler": "nvidia",
            })]),
        ));
        out.push((
            "airlock-nvidia-device-plugin.yaml".to_string(),
            yaml_docs(&[device_plugin(&image_name(&g.device_plugin))]),
        ));
    }
    if let (Some(a), Some(key)) = (&p.appliance, appliance_pub) {
        out.push((
            "airlock-appliance-replicas.yaml".to_string(),
            yaml_docs(&appliance_replicas(a, key)),
        ));
    }
    for w in &p.workloads {
        let rev = w.model.as_ref().and_then(|m| revisions.get(m));
        out.push((
            format!("airlock-workload-{}.yaml", w.name),
            yaml_docs(&[deployment(w, ep, rev.map(String::as_str)), service(w)]),
        ));
    }
    out
}

/// The full upstream name an image is preloaded and pulled under.
pub fn image_name(r: &str) -> String {
    image_key(r).unwrap_or_else(|| r.to_string())
}

fn managed() -> Value {
    json!({"app.kubernetes.io/managed-by": "airlock"})
}

fn gpu_toleration() -> Value {
    json!({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
}

fn device_plugin(image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": DEVICE_PLUGIN, "namespace": "kube-system", "labels": managed()},
        "spec": {
            "selector": {"matchLabels": {"name": "nvidia-device-plugin-ds"}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"name": "nvidia-device-plugin-ds"}},
                "spec": {
                    "runtimeClassName": "nvidia",
                    "nodeSelector": {GPU_LABEL: "true"},
                    "tolerations": [gpu_toleration()],
                    "priorityClassName": "system-node-critical",
                    "containers": [{
                        "name": "nvidia-device-plugin-ctr",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [{"name": "device-plugin", "mountPath": "/var/lib/kubelet/device-plugins"}],
                    }],
                    "volumes": [{"name": "device-plugin", "hostPath": {"path": "/var/lib/kubelet/device-plugins"}}],
                },
            },
        },
    })
}

/// The Secret (created by the operator) holding the replicas' object-store credentials as
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
pub const S3_SECRET: &str = "airlock-s3";

/// The appliance as stateless replicas: the appliance public key (a ConfigMap), a Deployment of
/// `airlockd serve --replica` spread over the nodes, and a Service in front.
fn appliance_replicas(
    a: &airlock_core::node::ApplianceReplicas,
    appliance_pub: &str,
) -> Vec<Value> {
    let name = "airlock-appliance";
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "airlock"});
    let mut args = vec![
        "serve".to_string(),
        "--replica".into(),
        "--store".into(),
        a.store.clone(),
        "--s3-endpoint".into(),
        a.s3_endpoint.clone(),
    ];
    if let Some(r) = &a.s3_region {
        args.extend(["--s3-region".to_string(), r.clone()]);
    }
    args.extend([
        "--appliance-key".to_string(),
        "/etc/airlock/appliance.pub".into(),
        "--listen".into(),
        format!("0.0.0.0:{}", a.port),
        "--cache".into(),
        "/var/cache/airlock".into(),
    ]);
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "airlock-appliance-key", "namespace": NAMESPACE, "labels": managed()},
            "data": {"appliance.pub": appliance_pub},
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "replicas": a.replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "topologySpreadConstraints": [{
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
                        }],
                        "containers": [{
                            "name": "airlockd",
                            "image": image_name(&a.image),
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["airlockd"],
                            "args": args,
                            "envFrom": [{"secretRef": {"name": S3_SECRET}}],
                            "ports": [{"name": "http", "containerPort": a.port}],
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "key", "mountPath": "/etc/airlock", "readOnly": true},
                                {"name": "cache", "mountPath": "/var/cache/airlock"},
                            ],
                        }],
                        "volumes": [
                            {"name": "key", "configMap": {"name": "airlock-appliance-key"}},
                            {"name": "cache", "emptyDir": {}},
                        ],
                    },
                },
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": managed()},
            "spec": {
                "selector": {"app.kubernetes.io/name": name},
                "ports": [{"name": "http", "port": a.port, "targetPort": "http", "protocol": "TCP"}],
            },
        }),
    ]
}

/// Where a workload sees its model.
fn model_mount(model: &str) -> String {
    format!("/models/{model}")
}

fn labels(w: &Workload) -> Value {
    json!({"app.kubernetes.io/name": w.name, "app.kubernetes.io/managed-by": "airlock"})
}

fn deployment(w: &Workload, ep: &Endpoint, revision: Option<&str>) -> Value {
    let port = w.port;
    let mut env: Vec<Value> = Vec::new();
    let mut args: Vec<String> = w.args.clone();
    let mut command: Vec<String> = w.command.clone();
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    let mut init = Vec::new();
    if let Some(m) = &w.model {
        let mount = model_mount(m);
        match w.model_delivery {
            ModelDelivery::HostPath => {
                let rev = revision.unwrap_or("unknown");
                volumes.push(json!({"name": "model", "hostPath": {"path": format!("{MODELS_DIR}/{m}/{rev}"), "type": "Directory"}}));
                mounts.push(json!({"name": "model", "mountPath": mount, "readOnly": true}));
            }
            ModelDelivery::Endpoint => {
                volumes.push(json!({"name": "model", "emptyDir": {}}));
                volumes.push(
                    json!({"name": "airlock-ca", "hostPath": {"path": CA_FILE, "type": "File"}}),
                );
                mounts.push(json!({"name": "model", "mountPath": mount, "readOnly": true}));
                let rev = revision.unwrap_or("main");
                let script = format!(
                    "from huggingface_hub import snapshot_download; snapshot_download({m:?}, revision={rev:?}, local_dir={mount:?})"
                );
                init.push(json!({
                    "name": "fetch-model",
                    "image": image_name(&w.image),
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-c", script],
                    "env": [
                        {"name": "HF_ENDPOINT", "value": ep.url},
                        {"name": "REQUESTS_CA_BUNDLE", "value": "/etc/airlock/ca.pem"},
                        {"name": "SSL_CERT_FILE", "value": "/etc/airlock/ca.pem"},
                    ],
                    "volumeMounts": [
                        {"name": "model", "mountPath": mount},
                        {"name": "airlock-ca", "mountPath": "/etc/airlock/ca.pem", "readOnly": true},
                    ],
                }));
            }
        }
        env.push(json!({"name": "HF_HUB_OFFLINE", "value": "1"}));
        env.push(json!({"name": "TRANSFORMERS_OFFLINE", "value": "1"}));
        match w.runtime {
            Runtime::Vllm => {
                // The vllm-openai image's entrypoint is the OpenAI-compatible server.
                let mut a = vec![
                    "--model".to_string(),
                    mount.clone(),
                    "--served-model-name".into(),
                    m.clone(),
                    "--port".into(),
                    port.to_string(),
                ];
                a.append(&mut args);
                args = a;
            }
            Runtime::Triton => {
                command = vec!["tritonserver".into()];
                let mut a = vec![
                    format!("--model-repository={mount}"),
                    format!("--http-port={port}"),
                ];
                a.append(&mut args);
                args = a;
            }
            Runtime::Custom => {}
        }
    }
    for (k, v) in &w.env {
        env.retain(|e| e["name"] != json!(k));
        env.push(json!({"name": k, "value": v}));
    }
    let ready = w.ready_path.clone().unwrap_or_else(|| {
        match w.runtime {
            Runtime::Vllm => "/health",
            Runtime::Triton => "/v2/health/ready",
            Runtime::Custom => "/",
        }
        .to_string()
    });
    let mut container = json!({
        "name": w.name,
        "image": image_name(&w.image),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port}],
        "readinessProbe": {
            "httpGet": {"path": ready, "port": "http"},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 90,
        },
    });
    if !command.is_empty() {
        container["command"] = json!(command);
    }
    if !args.is_empty() {
        container["args"] = json!(args);
    }
    if !env.is_empty() {
        container["env"] = Value::Array(env);
    }
    if !mounts.is_empty() {
        container["volumeMounts"] = Value::Array(mounts);
    }
    if w.gpus > 0 {
        container["resources"] = json!({"limits": {"nvidia.com/gpu": w.gpus}});
    }
    let mut pod = json!({"containers": [container]});
    if w.gpus > 0 {
        pod["runtimeClassName"] = json!("nvidia");
        pod["nodeSelector"] = json!({GPU_LABEL: "true"});
        pod["tolerations"] = json!([gpu_toleration()]);
    }
    if !init.is_empty() {
        pod["initContainers"] = Value::Array(init);
    }
    if !volumes.is_empty() {
        pod["volumes"] = Value::Array(volumes);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": w.name, "namespace": NAMESPACE, "labels": labels(w)},
        "spec": {
            "replicas": w.replicas,
            // A GPU workload cannot surge: a second pod would wait for a GPU the first holds.
            "strategy": {"type": if w.gpus > 0 { "Recreate" } else { "RollingUpdate" }},
            "selector": {"matchLabels": {"app.kubernetes.io/name": w.name}},
            "template": {"metadata": {"labels": labels(w)}, "spec": pod},
        },
    })
}

fn service(w: &Workload) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": w.name, "namespace": NAMESPACE, "labels": labels(w)},
        "spec": {
            "selector": {"app.kubernetes.io/name": w.name},
            "ports": [{"name": "http", "port": w.port, "targetPort": "http", "protocol": "TCP"}],
        },
    })
}

/// `/etc/systemd/system/airlockd.service`: the appliance's registry, served with its own TLS
/// certificate on the node.
pub fn airlockd_unit(data: &str, listen: &str) -> String {
    format!(
        "# Written by airlockd node render.\n\
[Unit]\n\
Description=airlock appliance: OCI registry, Hugging Face endpoint and apt repository\n\
Wants=network-online.target\n\
After=network-online.target\n\
Before=k3s.service\n\
\n\
[Service]\n\
Type=simple\n\
ExecStart=/usr/local/bin/airlockd serve --data {data} --listen {listen} --tls --inbox {data}/inbox\n\
Restart=on-failure\n\
RestartSec=2s\n\
NoNewPrivileges=yes\n\
ProtectSystem=strict\n\
ReadWritePaths={data}\n\
ProtectHome=yes\n\
PrivateTmp=yes\n\
\n\
[Install]\n\
WantedBy=multi-user.target\n"
    )
}

/// `/etc/apt/sources.list.d/airlock.list` for the profile's closure suite.
pub fn apt_list(ep: &Endpoint, suite: &str, keyring: &str) -> String {
    format!(
        "# Written by airlockd node render: the GPU stack comes from the appliance only.\n\
deb [signed-by={keyring}] {}/apt {suite} main\n",
        ep.url
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_core::manifest::InputManifest;

    pub(crate) fn profile() -> NodeProfile {
        let text = r#"
apiVersion: airlock/v1
kind: Bundle
metadata: {name: node, version: "1.0.0"}
spec:
  images:
    - {ref: "oci:./plugin", name: "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"}
    - {ref: "docker.io/vllm/vllm-openai:v0.9.1"}
  models:
    - {name: acme/tiny-model, source: "dir:./tiny"}
  files:
    - {name: k3s, path: ./k3s}
    - {name: k3s-install, path: ./install.sh}
  debs:
    - name: gpu-stack
      arch: amd64
      sources: [{uri: "file:///r", suite: bookworm, components: [main], keyring: k.gpg}]
      packages: [nvidia-driver]
  nodes:
    - name: gpu-node
      k3s: {binary: k3s, installer: k3s-install, config: {disable: [traefik]}}
      gpu: {vendor: nvidia, debs: gpu-stack, devicePlugin: "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"}
      workloads:
        - {name: chat, runtime: vllm, image: "vllm/vllm-openai:v0.9.1", model: acme/tiny-model, gpus: 1, port: 8000}
        - {name: fetcher, runtime: vllm, image: "vllm/vllm-openai:v0.9.1", model: acme/tiny-model, modelDelivery: endpoint, gpus: 1, port: 8001}
"#;
        InputManifest::parse(text, "m.yaml").unwrap().spec.nodes[0].clone()
    }

    #[test]
    fn registries_mirror_every_upstream_and_star_with_the_ca() {
        let ep = Endpoint::parse("https://airlock.rack:5000/").unwrap();
        let y = registries_yaml(&BTreeSet::from(["docker.io".into(), "nvcr.io".into()]), &ep);
        let v: Value = serde_norway::from_str(&y).unwrap();
        for r in ["docker.io", "nvcr.io", "*"] {
            assert_eq!(
                v["mirrors"][r]["endpoint"][0], "https://airlock.rack:5000",
                "{y}"
            );
        }
        assert_eq!(v["configs"]["airlock.rack:5000"]["tls"]["ca_file"], CA_FILE);
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("https://x/path").is_err());
    }

    #[test]
    fn config_labels_gpu_nodes_and_agents_join_the_server() {
        let p = profile();
        let v: Value = serde_norway::from_str(&config_yaml(&p, &Role::Server)).unwrap();
        assert_eq!(v["node-label"][0], "nvidia.com/gpu.present=true");
        assert_eq!(v["embedded-registry"], true);
        assert_eq!(v["disable"][0], "traefik");
        let a = Role::Agent {
            server: "https://10.0.0.1:6443".into(),
            token_file: "/etc/rancher/k3s/token".into(),
        };
        let v: Value = serde_norway::from_str(&config_yaml(&p, &a)).unwrap();
        assert_eq!(v["server"], "https://10.0.0.1:6443");
        assert!(v.get("disable").is_none() && v.get("embedded-registry").is_none());
        assert_eq!(v["node-label"][0], "nvidia.com/gpu.present=true");
    }

    #[test]
    fn workloads_get_gpus_the_runtime_class_and_an_offline_model() {
        let p = profile();
        let ep = Endpoint::parse("https://airlock.rack:5000").unwrap();
        let revs = BTreeMap::from([("acme/tiny-model".to_string(), "ab".repeat(20))]);
        let m = manifests(&p, &ep, &revs, None);
        let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "airlock-namespace.yaml",
                "airlock-runtimeclass-nvidia.yaml",
                "airlock-nvidia-device-plugin.yaml",
                "airlock-workload-chat.yaml",
                "airlock-workload-fetcher.yaml"
            ]
        );
        let dp: Value = serde_norway::from_str(m[2].1.trim_start_matches("---\n")).unwrap();
        assert_eq!(dp["spec"]["template"]["spec"]["runtimeClassName"], "nvidia");
        assert_eq!(
            dp["spec"]["template"]["spec"]["containers"][0]["image"],
            "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"
        );
        let docs: Vec<&str> = m[3].1.split("---\n").filter(|d| !d.is_empty()).collect();
        let d: Value = serde_norway::from_str(docs[0]).unwrap();
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(c["image"], "docker.io/vllm/vllm-openai:v0.9.1");
        assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], 1);
        assert!(c["env"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "HF_HUB_OFFLINE", "value": "1"})));
        assert_eq!(
            pod["volumes"][0]["hostPath"]["path"],
            format!(
                "/var/lib/airlock/models/acme/tiny-model/{}",
                "ab".repeat(20)
            )
        );
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health");
        // Endpoint delivery: an init container of the same image, pointed at the appliance.
        let docs: Vec<&str> = m[4].1.split("---\n").filter(|d| !d.is_empty()).collect();
        let d: Value = serde_norway::from_str(docs[0]).unwrap();
        let init = &d["spec"]["template"]["spec"]["initContainers"][0];
        assert_eq!(init["image"], "docker.io/vllm/vllm-openai:v0.9.1");
        assert_eq!(init["env"][0]["value"], "https://airlock.rack:5000");
    }
}
