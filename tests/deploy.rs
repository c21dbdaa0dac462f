//! The deployment material under deploy/: every YAML file parses, and the Dockerfile,
//! compose file, Kubernetes manifests and systemd unit keep the promises made in
//! docs/deployment.md. Nothing here needs a Docker engine or a cluster. The unit is
//! checked with `systemd-analyze verify` where that is installed (skipped otherwise),
//! the image's HEALTHCHECK command is run against a real `helpline serve`, and the
//! example settings are fed to `helpline config check`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::TcpListener;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use yaml_rust2::{Yaml, YamlLoader};

// ---- helpers -----------------------------------------------------------------------------

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy_path(rel: &str) -> PathBuf {
    root().join("deploy").join(rel)
}

fn read(rel: &str) -> String {
    let p = deploy_path(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Every `.yaml`/`.yml` file under `dir`, recursively, sorted.
fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
}

/// Parses every YAML file under `dir`; the error names each file that does not parse.
fn parse_yaml_tree(dir: &Path) -> Result<Vec<(PathBuf, Vec<Yaml>)>, String> {
    let mut files = Vec::new();
    yaml_files(dir, &mut files);
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match fs::read_to_string(&f) {
            Err(e) => errors.push(format!("{}: {e}", f.display())),
            Ok(text) => match YamlLoader::load_from_str(&text) {
                Ok(docs) if docs.is_empty() => {
                    errors.push(format!("{}: no YAML document", f.display()))
                }
                Ok(docs) => parsed.push((f, docs)),
                Err(e) => errors.push(format!("{}: {e}", f.display())),
            },
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors.join("\n"))
    }
}

/// The single document of a YAML file under deploy/.
fn yaml(rel: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(rel))
        .unwrap_or_else(|e| panic!("deploy/{rel} does not parse: {e}"));
    assert_eq!(docs.len(), 1, "deploy/{rel}: expected one YAML document");
    docs.remove(0)
}

fn string<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, found {y:?}"))
}

fn list<'a>(y: &'a Yaml, what: &str) -> &'a [Yaml] {
    y.as_vec()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("{what}: expected a list, found {y:?}"))
}

/// A mapping of strings (labels, ConfigMap data, stringData).
fn string_map(y: &Yaml, what: &str) -> BTreeMap<String, String> {
    y.as_hash()
        .unwrap_or_else(|| panic!("{what}: expected a mapping, found {y:?}"))
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                Yaml::Boolean(b) => b.to_string(),
                other => panic!("{what}: unexpected value {other:?}"),
            };
            (string(k, what).to_string(), v)
        })
        .collect()
}

fn is_subset(small: &BTreeMap<String, String>, big: &BTreeMap<String, String>) -> bool {
    small.iter().all(|(k, v)| big.get(k) == Some(v))
}

/// A compose service's key, looking through a `<<: *anchor` merge (yaml-rust2 keeps
/// merge keys as ordinary keys; Compose resolves them).
fn field<'a>(service: &'a Yaml, key: &str) -> &'a Yaml {
    let direct = &service[key];
    if direct.is_badvalue() {
        &service["<<"][key]
    } else {
        direct
    }
}

/// `depends_on` in either form: service name → condition (None for the list form).
fn depends_on(service: &Yaml) -> BTreeMap<String, Option<String>> {
    match field(service, "depends_on") {
        Yaml::Array(a) => a
            .iter()
            .map(|s| (string(s, "depends_on").to_string(), None))
            .collect(),
        Yaml::Hash(h) => h
            .iter()
            .map(|(k, v)| {
                (
                    string(k, "depends_on").to_string(),
                    v["condition"].as_str().map(str::to_string),
                )
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The Dockerfile's instructions as (INSTRUCTION, arguments), with continuation lines
/// joined and comments (and the syntax directive) dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (instruction, rest) = current
            .split_once(char::is_whitespace)
            .unwrap_or((current.as_str(), ""));
        out.push((instruction.to_ascii_uppercase(), rest.trim().to_string()));
        current.clear();
    }
    assert!(
        current.is_empty(),
        "deploy/Dockerfile ends inside a continuation line"
    );
    out
}

fn instructions(df: &[(String, String)], name: &str) -> Vec<String> {
    df.iter()
        .filter(|(i, _)| i == name)
        .map(|(_, rest)| rest.clone())
        .collect()
}

/// The UID of the Dockerfile's final USER.
fn dockerfile_uid() -> u32 {
    let users = instructions(&dockerfile(), "USER");
    let user = users.last().expect("deploy/Dockerfile has no USER");
    let name = user.split(':').next().unwrap_or_default();
    name.parse()
        .unwrap_or_else(|_| panic!("USER {user}: use a numeric UID so runAsNonRoot can check it"))
}

/// `ENV` settings of the Dockerfile (values without spaces).
fn dockerfile_env() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for rest in instructions(&dockerfile(), "ENV") {
        for pair in rest.split_whitespace() {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {rest}: use the KEY=value form"));
            env.insert(k.to_string(), v.trim_matches('"').to_string());
        }
    }
    env
}

/// The COPY sources of the build stage (before the second FROM), normalised.
fn build_stage_copies() -> BTreeSet<String> {
    let mut froms = 0;
    let mut sources = BTreeSet::new();
    for (instruction, rest) in dockerfile() {
        if instruction == "FROM" {
            froms += 1;
            continue;
        }
        if froms != 1 || instruction != "COPY" {
            continue;
        }
        let args: Vec<&str> = rest
            .split_whitespace()
            .filter(|a| !a.starts_with("--"))
            .collect();
        if let Some((_, srcs)) = args.split_last() {
            for s in srcs {
                sources.insert(s.trim_start_matches("./").trim_end_matches('/').to_string());
            }
        }
    }
    sources
}

/// KEY=value lines of an env file (systemd EnvironmentFile= / compose env_file).
fn env_file(rel: &str) -> BTreeMap<String, String> {
    read(rel)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("deploy/{rel}: not KEY=value: {l}"));
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// The unit file as (section, key, value) in order.
fn unit() -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in read("systemd/helpline.service").lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if t.starts_with('[') && t.ends_with(']') {
            section = t[1..t.len() - 1].to_string();
            continue;
        }
        let (k, v) = t
            .split_once('=')
            .unwrap_or_else(|| panic!("helpline.service: not Key=value: {t}"));
        out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
    }
    out
}

fn service_values(unit: &[(String, String, String)], key: &str) -> Vec<String> {
    unit.iter()
        .filter(|(s, k, _)| s == "Service" && k == key)
        .map(|(_, _, v)| v.clone())
        .collect()
}

/// The unit with every Exec*= command replaced by /bin/true, for `systemd-analyze verify`.
fn stub_exec(unit_text: &str) -> (String, usize) {
    let mut replaced = 0;
    let text = unit_text
        .lines()
        .map(|line| match line.split_once('=') {
            Some((key, value)) if key.trim().starts_with("Exec") => {
                replaced += 1;
                let args = value.trim().split_once(' ').map_or("", |(_, a)| a);
                format!("{}=/bin/true {args}", key.trim())
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    (text + "\n", replaced)
}

/// Replaces `${VAR}`, `${VAR:?msg}`, `${VAR:-default}` as Compose does.
fn interpolate(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .unwrap_or_else(|| panic!("unclosed ${{ in {s}"))
            + start;
        let expr = &rest[start + 2..end];
        let name = expr.split(':').next().unwrap_or_default();
        let value = vars.get(name).cloned().or_else(|| {
            expr.split_once(":-")
                .map(|(_, default)| default.to_string())
        });
        out.push_str(&value.unwrap_or_else(|| panic!("{name} is not set for {s}")));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn helpline_bin() -> &'static str {
    env!("CARGO_BIN_EXE_helpline")
}

/// Runs `helpline config check` with exactly `vars` (plus PATH) in `cwd`.
fn config_check(vars: &BTreeMap<String, String>, cwd: &Path) -> (bool, String) {
    // A placeholder data key is filled in as an operator would, with a new key.
    let mut vars = vars.clone();
    if let Some(key) = vars.get_mut("HELPLINE_DATA_KEY") {
        if key.contains("REPLACE") {
            *key = helpline::crypto::DataKey::generate().1.to_string();
        }
    }
    let out = Command::new(helpline_bin())
        .args(["config", "check"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(&vars)
        .current_dir(cwd)
        .output()
        .expect("helpline runs");
    (
        out.status.success(),
        format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Kills the child on drop, so a failed assertion leaves no server behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a command for at most `limit`; Some(success) or None on time-out.
fn run_with_limit(cmd: &mut Command, limit: Duration) -> Option<bool> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the command starts");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status.success());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- every YAML file ---------------------------------------------------------------------

#[test]
fn every_yaml_file_under_deploy_parses() {
    let parsed = parse_yaml_tree(&root().join("deploy")).unwrap_or_else(|e| panic!("{e}"));
    let names: BTreeSet<String> = parsed
        .iter()
        .map(|(p, _)| {
            p.strip_prefix(root().join("deploy"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    for expected in [
        "compose.yaml",
        "kubernetes/deployment.yaml",
        "kubernetes/kustomization.yaml",
        "kubernetes/migrate-job.yaml",
    ] {
        assert!(
            names.contains(expected),
            "deploy/{expected} was not found among {names:?}"
        );
    }
}

#[test]
fn a_yaml_file_that_does_not_parse_is_named() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("good.yaml"), "a: 1\n").unwrap();
    fs::create_dir(dir.path().join("nested")).unwrap();
    fs::write(dir.path().join("nested/broken.yml"), "a: [1, 2\nb: }\n").unwrap();
    fs::write(dir.path().join("notes.txt"), "a: [\n").unwrap();
    let err = parse_yaml_tree(dir.path()).expect_err("a broken file must fail");
    assert!(err.contains("broken.yml"), "{err}");
    assert!(!err.contains("good.yaml"), "{err}");
    assert!(
        !err.contains("notes.txt"),
        "only YAML files are parsed: {err}"
    );
}

// ---- Kubernetes --------------------------------------------------------------------------

#[test]
fn deployment_keeps_replicas_probes_and_security() {
    let d = yaml("kubernetes/deployment.yaml");
    assert_eq!(string(&d["kind"], "kind"), "Deployment");
    let replicas = d["spec"]["replicas"]
        .as_i64()
        .expect("deployment: spec.replicas");
    assert!(replicas >= 2, "deployment: replicas {replicas} < 2");

    let pod = &d["spec"]["template"]["spec"];
    let containers = list(&pod["containers"], "containers");
    let c = containers
        .iter()
        .find(|c| c["name"].as_str() == Some("helpline"))
        .expect("a container named helpline");

    // Probes: /readyz and /healthz on the main port (never the optional metrics port).
    let ports = list(&c["ports"], "ports");
    let http_port = ports
        .iter()
        .find(|p| p["name"].as_str() == Some("http"))
        .and_then(|p| p["containerPort"].as_i64())
        .expect("a container port named http");
    assert_eq!(http_port, 8080);
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(string(&get["path"], probe), path, "{probe} path");
        let port_ok = get["port"].as_str() == Some("http") || get["port"].as_i64() == Some(8080);
        assert!(port_ok, "{probe} must use the http port: {:?}", get["port"]);
    }

    // Non-root, read-only, no capabilities, no privilege escalation.
    assert_eq!(
        pod["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true),
        "pod securityContext.runAsNonRoot"
    );
    assert_ne!(
        c["securityContext"]["runAsNonRoot"].as_bool(),
        Some(false),
        "the container must not override runAsNonRoot"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert!(
        list(&sc["capabilities"]["drop"], "capabilities.drop")
            .iter()
            .any(|c| c.as_str() == Some("ALL")),
        "capabilities.drop must include ALL"
    );
    let uid = pod["securityContext"]["runAsUser"]
        .as_i64()
        .expect("pod securityContext.runAsUser");
    assert_eq!(
        uid,
        i64::from(dockerfile_uid()),
        "runAsUser vs Dockerfile USER"
    );

    // Resources, spreading, graceful shutdown.
    assert!(!c["resources"]["requests"]["memory"].is_badvalue());
    assert!(!c["resources"]["limits"]["memory"].is_badvalue());
    let spread = pod["topologySpreadConstraints"]
        .as_vec()
        .is_some_and(|v| !v.is_empty())
        || !pod["affinity"]["podAntiAffinity"].is_badvalue();
    assert!(spread, "replicas must be spread over nodes");
    let config = string_map(&yaml("kubernetes/configmap.yaml")["data"], "configmap data");
    let shutdown: i64 = config
        .get("HELPLINE_SHUTDOWN_SECONDS")
        .map_or(20, |s| s.parse().expect("HELPLINE_SHUTDOWN_SECONDS"));
    let grace = pod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace > shutdown,
        "terminationGracePeriodSeconds {grace} must exceed HELPLINE_SHUTDOWN_SECONDS {shutdown}"
    );
}

#[test]
fn deployment_takes_settings_from_the_configmap_and_secrets_from_the_secret() {
    let d = yaml("kubernetes/deployment.yaml");
    let cm = yaml("kubernetes/configmap.yaml");
    let secret = yaml("kubernetes/secret.example.yaml");
    let cm_name = string(&cm["metadata"]["name"], "configmap name");
    let secret_name = string(&secret["metadata"]["name"], "secret name");
    let secret_keys = string_map(&secret["stringData"], "secret stringData");
    let config = string_map(&cm["data"], "configmap data");
    assert_eq!(
        config.get("HELPLINE_LISTEN").map(String::as_str),
        Some("0.0.0.0:8080")
    );
    for secret_var in [
        "DATABASE_URL",
        "TWILIO_AUTH_TOKEN",
        "DATABASE_READ_URL",
        "POSTGRES_PASSWORD",
        "HELPLINE_DATA_KEY",
    ] {
        assert!(
            !config.contains_key(secret_var),
            "{secret_var} belongs in the Secret, not the ConfigMap"
        );
    }

    let c = &list(&d["spec"]["template"]["spec"]["containers"], "containers")[0];
    let env_from = list(&c["envFrom"], "envFrom");
    assert!(
        env_from
            .iter()
            .any(|e| e["configMapRef"]["name"].as_str() == Some(cm_name)),
        "envFrom must reference the ConfigMap {cm_name}"
    );
    let env = list(&c["env"], "env");
    for var in ["DATABASE_URL", "TWILIO_AUTH_TOKEN", "HELPLINE_DATA_KEY"] {
        let e = env
            .iter()
            .find(|e| e["name"].as_str() == Some(var))
            .unwrap_or_else(|| panic!("env {var} missing"));
        assert!(
            e["value"].is_badvalue(),
            "{var} must not be a literal value"
        );
    }
    for e in env {
        let r = &e["valueFrom"]["secretKeyRef"];
        if r.is_badvalue() {
            continue;
        }
        assert_eq!(string(&r["name"], "secretKeyRef.name"), secret_name);
        let key = string(&r["key"], "secretKeyRef.key");
        assert!(
            secret_keys.contains_key(key),
            "secret.example.yaml lacks the key {key} the Deployment uses"
        );
    }
}

#[test]
fn migrate_job_runs_migrate_with_the_deployment_image() {
    let job = yaml("kubernetes/migrate-job.yaml");
    let d = yaml("kubernetes/deployment.yaml");
    assert_eq!(string(&job["kind"], "kind"), "Job");
    let pod = &job["spec"]["template"]["spec"];
    let restart = string(&pod["restartPolicy"], "restartPolicy");
    assert!(matches!(restart, "Never" | "OnFailure"), "{restart}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let c = &list(&pod["containers"], "containers")[0];
    let argv: Vec<&str> = ["command", "args"]
        .iter()
        .filter_map(|k| c[*k].as_vec())
        .flatten()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        argv.contains(&"migrate"),
        "the Job must run `helpline migrate`: {argv:?}"
    );
    let server = &list(&d["spec"]["template"]["spec"]["containers"], "containers")[0];
    assert_eq!(
        string(&c["image"], "job image"),
        string(&server["image"], "deployment image"),
        "migrations must come from the same image as the server"
    );
}

#[test]
fn service_and_pdb_select_only_the_server_pods() {
    let d = yaml("kubernetes/deployment.yaml");
    let job = yaml("kubernetes/migrate-job.yaml");
    let svc = yaml("kubernetes/service.yaml");
    let pdb = yaml("kubernetes/pdb.yaml");
    let server_labels = string_map(
        &d["spec"]["template"]["metadata"]["labels"],
        "deployment pod labels",
    );
    let job_labels = string_map(&job["spec"]["template"]["metadata"]["labels"], "job labels");
    let svc_selector = string_map(&svc["spec"]["selector"], "service selector");
    let pdb_selector = string_map(&pdb["spec"]["selector"]["matchLabels"], "pdb selector");
    let deploy_selector = string_map(&d["spec"]["selector"]["matchLabels"], "selector");
    assert!(is_subset(&deploy_selector, &server_labels));
    for (what, sel) in [("Service", &svc_selector), ("PDB", &pdb_selector)] {
        assert!(
            is_subset(sel, &server_labels),
            "{what} must select the server pods"
        );
        assert!(
            !is_subset(sel, &job_labels),
            "{what} must not select migration pods"
        );
    }
    assert_eq!(pdb["spec"]["minAvailable"].as_i64(), Some(1));
    let target = &list(&svc["spec"]["ports"], "service ports")[0]["targetPort"];
    assert!(
        target.as_str() == Some("http") || target.as_i64() == Some(8080),
        "the Service must target the webhook port: {target:?}"
    );
}

#[test]
fn kustomization_lists_every_manifest_and_no_example() {
    let k = yaml("kubernetes/kustomization.yaml");
    let resources: BTreeSet<String> = list(&k["resources"], "resources")
        .iter()
        .map(|r| string(r, "resource").to_string())
        .collect();
    assert!(!resources.is_empty());
    for r in &resources {
        assert!(
            deploy_path("kubernetes").join(r).is_file(),
            "kustomization.yaml lists {r}, which does not exist"
        );
        assert!(
            !r.contains("example"),
            "kustomization.yaml must not apply {r}"
        );
    }
    let mut files = Vec::new();
    yaml_files(&deploy_path("kubernetes"), &mut files);
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name == "kustomization.yaml" || name.contains(".example.") {
            continue;
        }
        assert!(
            resources.contains(&name),
            "{name} is not listed in kustomization.yaml"
        );
    }
}

// ---- Compose -----------------------------------------------------------------------------

#[test]
fn compose_runs_helpline_after_postgres_and_the_migration() {
    let c = yaml("compose.yaml");
    let services = &c["services"];
    for s in ["helpline", "postgres", "migrate"] {
        assert!(
            services[s].as_hash().is_some(),
            "compose.yaml: service {s} missing"
        );
    }
    let helpline = &services["helpline"];
    let deps = depends_on(helpline);
    assert!(
        deps.contains_key("postgres"),
        "helpline must depend on postgres: {deps:?}"
    );
    assert_eq!(
        deps.get("postgres").cloned().flatten().as_deref(),
        Some("service_healthy")
    );
    assert_eq!(
        deps.get("migrate").cloned().flatten().as_deref(),
        Some("service_completed_successfully"),
        "helpline must wait for the migration"
    );
    assert_eq!(
        depends_on(&services["migrate"])
            .get("postgres")
            .cloned()
            .flatten()
            .as_deref(),
        Some("service_healthy")
    );
    let migrate_cmd: Vec<&str> = list(field(&services["migrate"], "command"), "migrate command")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(migrate_cmd, ["migrate"]);

    let pg = &services["postgres"];
    assert!(
        string(&pg["image"], "postgres image").starts_with("postgres:"),
        "postgres image"
    );
    assert!(
        !pg["healthcheck"]["test"].is_badvalue(),
        "postgres needs a healthcheck"
    );
    let volume = list(&pg["volumes"], "postgres volumes")
        .iter()
        .filter_map(Yaml::as_str)
        .find_map(|v| v.split_once(':').map(|(name, _)| name.to_string()))
        .expect("postgres has a volume");
    assert!(
        c["volumes"]
            .as_hash()
            .is_some_and(|h| h.contains_key(&Yaml::String(volume.clone()))),
        "the volume {volume} must be a named volume"
    );

    let ports: Vec<&str> = list(&helpline["ports"], "helpline ports")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        ports.iter().any(|p| p.ends_with(":8080")),
        "helpline must publish 8080: {ports:?}"
    );
    let build = field(helpline, "build");
    assert_eq!(string(&build["context"], "build.context"), "..");
    assert_eq!(
        string(&build["dockerfile"], "build.dockerfile"),
        "deploy/Dockerfile"
    );
    let env_file = string(field(helpline, "env_file"), "env_file");
    assert!(
        deploy_path(&format!("{env_file}.example")).is_file(),
        "deploy/{env_file}.example must exist to copy from"
    );
}

// ---- Dockerfile --------------------------------------------------------------------------

#[test]
fn dockerfile_is_multi_stage_non_root_locked_and_health_checked() {
    let df = dockerfile();
    let froms = instructions(&df, "FROM");
    assert!(froms.len() >= 2, "multi-stage build expected: {froms:?}");
    assert!(
        froms[0].starts_with("rust:") && froms[0].contains("bookworm"),
        "{}",
        froms[0]
    );
    assert_eq!(
        froms.last().unwrap().split_whitespace().next(),
        Some("debian:bookworm-slim")
    );
    assert!(dockerfile_uid() > 0, "USER must not be root");

    let builds: Vec<String> = instructions(&df, "RUN")
        .into_iter()
        .filter(|r| r.contains("cargo build"))
        .collect();
    assert!(!builds.is_empty(), "no RUN cargo build");
    for b in &builds {
        assert!(
            b.contains("--locked") && b.contains("--release"),
            "cargo build must use --release --locked: {b}"
        );
    }
    // The toolchain is the crate's rust-version.
    let manifest = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version"))
        .map(|v| v.trim_start_matches([' ', '=']).trim().trim_matches('"'))
        .expect("Cargo.toml rust-version");
    assert!(
        instructions(&df, "ARG").contains(&format!("RUST_VERSION={rust_version}")),
        "ARG RUST_VERSION must match Cargo.toml rust-version {rust_version}"
    );

    let healthchecks = instructions(&df, "HEALTHCHECK");
    assert_eq!(healthchecks.len(), 1, "one HEALTHCHECK expected");
    assert!(
        healthchecks[0].contains(" CMD ") && healthchecks[0].contains("/healthz"),
        "HEALTHCHECK must probe /healthz: {}",
        healthchecks[0]
    );
    assert!(instructions(&df, "EXPOSE").iter().any(|e| e == "8080"));
    let env = dockerfile_env();
    assert_eq!(
        env.get("HELPLINE_LISTEN").map(String::as_str),
        Some("0.0.0.0:8080")
    );
    assert_eq!(
        env.get("HELPLINE_LOG_FORMAT").map(String::as_str),
        Some("json")
    );
    assert!(
        !env.contains_key("DATABASE_URL"),
        "DATABASE_URL in the image would override DATABASE_URL_FILE"
    );
    assert!(
        instructions(&df, "RUN")
            .iter()
            .any(|r| r.contains("install") && r.contains("ca-certificates")),
        "the runtime image needs ca-certificates"
    );
}

/// The build stage copies only chosen paths: it must copy every file or directory the
/// binary embeds at compile time, and the BuildKit ignore file must let them through.
#[test]
fn dockerfile_copies_everything_the_build_reads() {
    let root = root();
    let mut needed: BTreeSet<String> = ["Cargo.toml", "Cargo.lock", "src"]
        .into_iter()
        .map(String::from)
        .collect();
    if root.join("build.rs").exists() {
        needed.insert("build.rs".into());
    }
    let mut stack = vec![root.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let text = fs::read_to_string(&p).unwrap();
            for (mac, relative_to_file) in [
                ("include_str!(\"", true),
                ("include_bytes!(\"", true),
                ("migrate!(\"", false),
            ] {
                for (i, _) in text.match_indices(mac) {
                    let arg = &text[i + mac.len()..];
                    let arg = &arg[..arg.find('"').unwrap()];
                    let base = if relative_to_file {
                        p.parent().unwrap().to_path_buf()
                    } else {
                        root.clone()
                    };
                    let mut parts: Vec<Component> = Vec::new();
                    let joined = base.join(arg);
                    for c in joined.components() {
                        match c {
                            Component::ParentDir => {
                                parts.pop();
                            }
                            Component::CurDir => {}
                            other => parts.push(other),
                        }
                    }
                    let full: PathBuf = parts.iter().collect();
                    let top = full
                        .strip_prefix(&root)
                        .unwrap_or_else(|_| panic!("{}: {arg} is outside the crate", p.display()))
                        .components()
                        .next()
                        .unwrap();
                    needed.insert(top.as_os_str().to_string_lossy().into_owned());
                }
            }
            if text.contains("migrate!()") {
                needed.insert("migrations".into());
            }
        }
    }
    assert!(
        needed.contains("migrations") && needed.contains("data"),
        "the scan of src/ found too little: {needed:?}"
    );
    let copies = build_stage_copies();
    let ignore = read("Dockerfile.dockerignore");
    let allowed: BTreeSet<&str> = ignore
        .lines()
        .filter_map(|l| l.trim().strip_prefix('!'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    for n in &needed {
        assert!(
            copies.contains(n),
            "deploy/Dockerfile's build stage must COPY {n} (copies: {copies:?})"
        );
        assert!(
            allowed.contains(n.as_str()),
            "deploy/Dockerfile.dockerignore must allow !{n}"
        );
    }
}

/// The HEALTHCHECK command, run as Docker would run it, against a real server.
#[test]
fn dockerfile_healthcheck_passes_on_a_live_server_and_fails_on_a_dead_one() {
    let hc = instructions(&dockerfile(), "HEALTHCHECK").remove(0);
    let json = &hc[hc.find("CMD ").expect("HEALTHCHECK ... CMD") + 4..];
    let argv: Vec<String> = serde_json::from_str(json.trim())
        .unwrap_or_else(|e| panic!("HEALTHCHECK CMD must be an exec-form JSON array: {e}"));
    let probe = |port: u16| {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HELPLINE_LISTEN", format!("0.0.0.0:{port}"));
        run_with_limit(&mut cmd, Duration::from_secs(5))
    };

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let server = Command::new(helpline_bin())
        .args(["serve", "--insecure-dev"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HELPLINE_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("h.db").display()),
        )
        .env("HELPLINE_BANK_HOLIDAYS_URL", "off")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("helpline serve starts");
    let mut server = KillOnDrop(server);

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut healthy = false;
    while Instant::now() < deadline {
        if probe(port) == Some(true) {
            healthy = true;
            break;
        }
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("helpline serve exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        healthy,
        "the HEALTHCHECK never passed against a running server"
    );

    server.0.kill().unwrap();
    server.0.wait().unwrap();
    assert_eq!(
        probe(port),
        Some(false),
        "the HEALTHCHECK must fail when nothing listens"
    );
}

// ---- systemd -----------------------------------------------------------------------------

#[test]
fn systemd_unit_is_hardened_and_runs_migrate_first() {
    let u = unit();
    let last = |key: &str| {
        service_values(&u, key)
            .pop()
            .unwrap_or_else(|| panic!("helpline.service: {key}= missing"))
    };
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "helpline"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("SystemCallFilter", "@system-service"),
        ("EnvironmentFile", "/etc/helpline/helpline.env"),
        ("ExecStartPre", "/usr/local/bin/helpline migrate"),
        ("ExecStart", "/usr/local/bin/helpline serve"),
        ("Restart", "on-failure"),
    ] {
        assert_eq!(last(key), value, "helpline.service: {key}=");
    }
    let caps = service_values(&u, "CapabilityBoundingSet");
    assert!(
        !caps.is_empty() && caps.iter().all(String::is_empty),
        "CapabilityBoundingSet= must be present and empty: {caps:?}"
    );

    // The token arrives as a credential and the service is told where.
    let creds = service_values(&u, "LoadCredential");
    let id = creds
        .iter()
        .find_map(|c| {
            c.split_once(':')
                .map(|(id, _)| id.to_string())
                .filter(|id| id == "twilio_auth_token")
        })
        .expect("LoadCredential=twilio_auth_token:…");
    let environment = service_values(&u, "Environment");
    assert!(
        environment
            .iter()
            .any(|e| e == &format!("TWILIO_AUTH_TOKEN_FILE=%d/{id}")),
        "Environment=TWILIO_AUTH_TOKEN_FILE=%d/{id} missing: {environment:?}"
    );

    // Time to drain: more than the service's own shutdown deadline.
    let stop: u64 = last("TimeoutStopSec")
        .trim_end_matches('s')
        .parse()
        .expect("TimeoutStopSec in seconds");
    let shutdown: u64 = env_file("systemd/helpline.env.example")
        .get("HELPLINE_SHUTDOWN_SECONDS")
        .map_or(20, |s| s.parse().unwrap());
    assert!(
        stop > shutdown,
        "TimeoutStopSec {stop} must exceed HELPLINE_SHUTDOWN_SECONDS {shutdown}"
    );
    assert_eq!(stop, 30);
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let available = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        println!("systemd-analyze not available: unit not verified");
        return;
    }
    let (stubbed, replaced) = stub_exec(&read("systemd/helpline.service"));
    assert!(
        replaced >= 2,
        "expected ExecStartPre= and ExecStart= to stub"
    );
    let verify = |text: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("helpline.service");
        fs::write(&path, text).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // Other units on the machine may draw warnings; only this unit's count.
        let complaints: Vec<String> = stderr
            .lines()
            .filter(|l| l.contains("helpline.service"))
            .map(str::to_string)
            .collect();
        (out.status.success(), complaints, stderr)
    };
    let (ok, complaints, stderr) = verify(&stubbed);
    assert!(
        ok && complaints.is_empty(),
        "systemd-analyze verify (Exec*= stubbed with /bin/true):\n{stderr}"
    );

    // The check can fail: a misspelt hardening key is reported.
    let broken = stubbed.replace("ProtectSystem=strict", "ProtectSytem=strict");
    let (_, complaints, stderr) = verify(&broken);
    assert!(
        complaints.iter().any(|l| l.contains("ProtectSytem")),
        "systemd-analyze did not flag a misspelt key:\n{stderr}"
    );
}

// ---- the example settings are accepted by the service ------------------------------------

#[test]
fn systemd_example_settings_pass_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("twilio_auth_token");
    fs::write(&token, "placeholder-token\n").unwrap();
    // The unit's Environment= defaults, then the env file (which wins, as in systemd).
    let mut vars = BTreeMap::new();
    for e in service_values(&unit(), "Environment") {
        let (k, v) = e.split_once('=').unwrap();
        let v = v.replace("%d/twilio_auth_token", &token.display().to_string());
        vars.insert(k.to_string(), v);
    }
    vars.extend(env_file("systemd/helpline.env.example"));
    // The unit's StateDirectory, here a temporary one.
    vars.insert(
        "DATABASE_URL".into(),
        format!("sqlite://{}", dir.path().join("helpline.db").display()),
    );
    let (ok, out) = config_check(&vars, dir.path());
    assert!(ok, "systemd example settings rejected:\n{out}");
    assert!(out.contains("127.0.0.1:8080"), "{out}");
    assert!(out.contains("helpline-data.key"), "{out}");
    assert!(
        out.contains("set (hidden)"),
        "the token file was not used:\n{out}"
    );
}

#[test]
fn compose_example_settings_pass_config_check() {
    let compose = yaml("compose.yaml");
    let example = env_file("helpline.env.example");
    // What the container sees: the image's ENV, then env_file, then environment.
    let mut vars = dockerfile_env();
    vars.extend(example.clone());
    let environment = string_map(
        field(&compose["services"]["helpline"], "environment"),
        "environment",
    );
    for (k, v) in environment {
        vars.insert(k, interpolate(&v, &example));
    }
    assert!(vars["DATABASE_URL"].starts_with("postgres://helpline:"));
    assert!(vars["DATABASE_URL"].contains("@postgres:5432/"));
    // The image's /app/call_flows is the repository's call_flows/.
    vars.insert(
        "HELPLINE_CALL_FLOWS".into(),
        root().join("call_flows").display().to_string(),
    );
    let (ok, out) = config_check(&vars, &root());
    assert!(ok, "compose example settings rejected:\n{out}");
    assert!(out.contains("0.0.0.0:8080"), "{out}");
    assert!(out.contains("set (hidden)"), "{out}");
    assert!(
        out.contains("data key            HELPLINE_DATA_KEY (key "),
        "{out}"
    );
}

#[test]
fn kubernetes_example_settings_pass_config_check() {
    let d = yaml("kubernetes/deployment.yaml");
    let mut vars = dockerfile_env();
    vars.extend(string_map(
        &yaml("kubernetes/configmap.yaml")["data"],
        "configmap",
    ));
    let secrets = string_map(
        &yaml("kubernetes/secret.example.yaml")["stringData"],
        "secret",
    );
    let c = &list(&d["spec"]["template"]["spec"]["containers"], "containers")[0];
    for e in list(&c["env"], "env") {
        let name = string(&e["name"], "env name").to_string();
        if let Some(v) = e["value"].as_str() {
            vars.insert(name, v.to_string());
        } else if let Some(key) = e["valueFrom"]["secretKeyRef"]["key"].as_str() {
            vars.insert(name, secrets[key].clone());
        }
    }
    vars.insert(
        "HELPLINE_CALL_FLOWS".into(),
        root().join("call_flows").display().to_string(),
    );
    let (ok, out) = config_check(&vars, &root());
    assert!(ok, "Kubernetes example settings rejected:\n{out}");
    assert!(out.contains("0.0.0.0:8080"), "{out}");
    assert!(out.contains("set (hidden)"), "{out}");
    assert!(
        out.contains("data key            HELPLINE_DATA_KEY (key "),
        "{out}"
    );
}

#[test]
fn examples_hold_placeholders_not_secrets() {
    for rel in [
        "helpline.env.example",
        "systemd/helpline.env.example",
        "kubernetes/secret.example.yaml",
        "kubernetes/configmap.yaml",
        "compose.yaml",
    ] {
        let text = read(rel);
        // A Twilio auth token is 32 hex digits.
        let mut run = 0;
        for ch in text.chars() {
            run = if ch.is_ascii_hexdigit() { run + 1 } else { 0 };
            assert!(run < 32, "deploy/{rel} seems to hold a real token");
        }
    }
    assert!(env_file("helpline.env.example")["TWILIO_AUTH_TOKEN"].contains("REPLACE"));
    assert!(env_file("helpline.env.example")["POSTGRES_PASSWORD"].contains("REPLACE"));
    assert!(env_file("helpline.env.example")["HELPLINE_DATA_KEY"].contains("REPLACE"));
    let secret = yaml("kubernetes/secret.example.yaml");
    for (key, value) in string_map(&secret["stringData"], "stringData") {
        assert!(
            value.contains("REPLACE_ME"),
            "secret.example.yaml {key} must be a placeholder"
        );
    }
}
