//! Single sign-on at the command line against a real OpenID provider (`oidc-provider`):
//! `portico login --sso` (authorization code + PKCE through the loopback redirect, and the
//! device flow), `portico credential` (fresh, refreshed, refused, concurrent), the token
//! cache's file modes, and kubectl using `portico credential` as its exec plugin.
//!
//! The CLI runs as a separate process (`portico-cli`, this crate's build of the one-shot
//! commands) so that its loopback listener, its printed sign-in address and kubectl's exec
//! plugin all work as they do for a person.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use kube_sim::KubeSim;
use portico_e2e::gateway::TestGateway;
use portico_e2e::kubectl::Kubectl;
use portico_e2e::oidc::{CLI_CLIENT_ID, OidcOptions, OidcProvider, jwt_claims};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const CLI: &str = env!("CARGO_BIN_EXE_portico-cli");

/// A person's machine: a config file and a token cache in a temporary folder.
struct Workstation {
    dir: tempfile::TempDir,
}

impl Workstation {
    fn new() -> Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir()?,
        })
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config/portico.yaml")
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache/oidc")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(CLI);
        cmd.args(args)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PORTICO_CONFIG", self.config())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    fn provider_args(&self, op: &OidcProvider) -> Vec<String> {
        let mut args = vec![
            "--oidc-issuer-url".to_owned(),
            op.issuer().to_owned(),
            "--oidc-client-id".to_owned(),
            CLI_CLIENT_ID.to_owned(),
            "--token-cache-dir".to_owned(),
            self.cache_dir().display().to_string(),
        ];
        if let Some(ca) = op.ca_file() {
            args.extend(["--oidc-ca-file".to_owned(), ca.display().to_string()]);
        }
        args
    }

    /// Runs `portico credential` for `op` to completion.
    async fn credential(&self, op: &OidcProvider) -> Result<(i32, String, String)> {
        let mut args = vec!["credential".to_owned()];
        args.extend(self.provider_args(op));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tokio::time::timeout(Duration::from_secs(60), self.command(&args).output())
            .await
            .context("portico credential did not finish in 60 s")??;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    fn cache_file(&self) -> Result<PathBuf> {
        let files: Vec<PathBuf> = std::fs::read_dir(self.cache_dir())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        ensure!(files.len() == 1, "one cache entry expected: {files:?}");
        Ok(files[0].clone())
    }

    fn cache(&self) -> Result<Value> {
        Ok(serde_json::from_slice(&std::fs::read(self.cache_file()?)?)?)
    }

    fn rewrite_cache(&self, change: impl FnOnce(&mut Value)) -> Result<()> {
        let mut cache = self.cache()?;
        change(&mut cache);
        std::fs::write(self.cache_file()?, serde_json::to_vec(&cache)?)?;
        Ok(())
    }
}

/// Reads the child's standard error until a line satisfies `pred`; returns that line and
/// keeps reading the rest in the background (so the child never blocks on a full pipe).
async fn stderr_line(
    child: &mut Child,
    pred: impl Fn(&str) -> bool,
) -> Result<(String, tokio::task::JoinHandle<Vec<String>>)> {
    let stderr = child.stderr.take().context("stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if pred(&line) {
                return Ok::<_, anyhow::Error>(Some(line));
            }
            seen.push(line);
        }
        Ok(None)
    })
    .await
    .context("no such line on stderr in 60 s")??;
    let Some(found) = found else {
        bail!("stderr ended without the line; saw {seen:?}");
    };
    let rest = tokio::spawn(async move {
        let mut rest = seen;
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    });
    Ok((found, rest))
}

async fn finish(mut child: Child, stderr: tokio::task::JoinHandle<Vec<String>>) -> Result<Value> {
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .context("the CLI did not exit in 60 s")??;
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        tokio::io::AsyncReadExt::read_to_string(&mut out, &mut stdout).await?;
    }
    let stderr = stderr.await?.join("\n");
    ensure!(
        status.success(),
        "the CLI failed ({status}):\n{stdout}\n{stderr}"
    );
    serde_json::from_str(&stdout).with_context(|| format!("not JSON: {stdout}\n{stderr}"))
}

/// `portico login --sso` with the code flow, the browser played by the harness: the CLI
/// prints the address, the harness signs in as `user`, and the provider's redirect goes to
/// the CLI's loopback listener. Returns the CLI's JSON report and the address it printed.
async fn login_with_code_flow(
    ws: &Workstation,
    op: &OidcProvider,
    user: &str,
    extra: &[&str],
) -> Result<(Value, String)> {
    let mut args = vec!["--server", "https://127.0.0.1:9"];
    let provider = ws.provider_args(op);
    args.extend(provider.iter().map(String::as_str));
    args.extend(extra);
    sign_in(ws, op, user, &args).await
}

/// `portico login --sso --no-browser -o json ARGS`, signed in as `user` through the harness.
async fn sign_in(
    ws: &Workstation,
    op: &OidcProvider,
    user: &str,
    extra: &[&str],
) -> Result<(Value, String)> {
    let mut args = vec!["login", "--sso", "--no-browser", "-o", "json"];
    args.extend(extra);
    let mut child = ws.command(&args).spawn()?;
    let issuer = op.issuer().to_owned();
    let (line, stderr) = stderr_line(&mut child, |l| l.trim().starts_with(&issuer)).await?;
    let authorize = line.trim().to_owned();
    let redirect = op.complete_login(&authorize, user).await?;
    ensure!(
        redirect.starts_with("http://127.0.0.1:") && redirect.contains("code="),
        "{redirect}"
    );
    // The browser follows the redirect to the CLI.
    let page = reqwest::get(&redirect).await?.text().await?;
    ensure!(page.contains("Signed in"), "{page}");
    Ok((finish(child, stderr).await?, authorize))
}

#[cfg(unix)]
fn mode(path: &Path) -> Result<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[tokio::test]
async fn login_with_the_code_flow_pkce_and_a_loopback_redirect() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let ws = Workstation::new()?;
    let (report, authorize) = login_with_code_flow(&ws, &op, "alice", &["--no-kubeconfig"]).await?;
    // The request the CLI made: PKCE with S256, a loopback redirect on a port of its own.
    let url = reqwest::Url::parse(&authorize)?;
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["code_challenge"].len() >= 43);
    assert!(
        query["redirect_uri"].starts_with("http://127.0.0.1:"),
        "{authorize}"
    );
    assert!(
        query["scope"].split(' ').any(|s| s == "offline_access"),
        "{authorize}"
    );
    assert_eq!(report["user"], "alice@example.com");
    assert_eq!(report["groups"], serde_json::json!(["dev", "ops"]));

    // The cache holds a real ID token for this client, and is private.
    let cache = ws.cache()?;
    let claims = jwt_claims(cache["idToken"].as_str().context("idToken")?)?;
    assert_eq!(claims["aud"], CLI_CLIENT_ID);
    assert_eq!(claims["iss"], op.issuer());
    assert!(cache["refreshToken"].is_string());
    #[cfg(unix)]
    {
        assert_eq!(mode(&ws.cache_file()?)?, 0o600);
        assert_eq!(mode(&ws.cache_dir())?, 0o700);
    }
    // The context names the provider, and holds no token.
    let config = std::fs::read_to_string(ws.config())?;
    assert!(config.contains("kind: oidc"), "{config}");
    assert!(!config.contains(cache["idToken"].as_str().unwrap_or("-")));
    Ok(())
}

#[tokio::test]
async fn login_with_the_device_flow() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let ws = Workstation::new()?;
    let mut args = vec![
        "login",
        "--sso",
        "--device",
        "--no-kubeconfig",
        "-o",
        "json",
        "--server",
        "https://127.0.0.1:9",
    ];
    let provider = ws.provider_args(&op);
    args.extend(provider.iter().map(String::as_str));
    let mut child = ws.command(&args).spawn()?;
    // The code is on the line after "enter the code".
    let stderr_pipe = child.stderr.take().context("stderr")?;
    let mut lines = BufReader::new(stderr_pipe).lines();
    let mut user_code = None;
    let mut seen = Vec::new();
    while let Some(line) =
        tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await??
    {
        if seen
            .last()
            .is_some_and(|l: &String| l.contains("enter the code"))
            && !line.trim().is_empty()
        {
            user_code = Some(line.trim().to_owned());
            break;
        }
        if !line.trim().is_empty() {
            seen.push(line);
        }
    }
    let user_code = user_code.with_context(|| format!("no user code in {seen:?}"))?;
    op.approve_device(&user_code, "bob").await?;
    let rest = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    });
    let report = finish(child, rest).await?;
    assert_eq!(report["user"], "bob@example.com");
    assert_eq!(report["groups"], serde_json::json!(["dev"]));
    let cache = ws.cache()?;
    assert_eq!(
        jwt_claims(cache["idToken"].as_str().context("idToken")?)?["sub"],
        "bob"
    );
    Ok(())
}

fn exec_credential(stdout: &str) -> Result<Value> {
    let value: Value =
        serde_json::from_str(stdout).with_context(|| format!("not JSON: {stdout}"))?;
    assert_eq!(value["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(value["kind"], "ExecCredential");
    Ok(value)
}

#[tokio::test]
async fn credential_hands_out_the_cached_token_and_refreshes_an_expired_one() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let ws = Workstation::new()?;
    login_with_code_flow(&ws, &op, "alice", &["--no-kubeconfig"]).await?;
    let cached = ws.cache()?;

    // Fresh: the cached token as it is, with its expiry.
    let (code, stdout, stderr) = ws.credential(&op).await?;
    ensure!(code == 0, "{stderr}");
    let fresh = exec_credential(&stdout)?;
    assert_eq!(fresh["status"]["token"], cached["idToken"]);
    let exp = jwt_claims(cached["idToken"].as_str().context("idToken")?)?["exp"]
        .as_i64()
        .context("exp")?;
    let stamp: jiff::Timestamp = fresh["status"]["expirationTimestamp"]
        .as_str()
        .context("expirationTimestamp")?
        .parse()?;
    assert_eq!(stamp.as_second(), exp);
    assert_eq!(ws.cache()?, cached, "a fresh token is not refreshed");

    // Expired: refreshed with the refresh token (the provider rotates it), cache rewritten.
    ws.rewrite_cache(|c| c["expiry"] = Value::from(0))?;
    let (code, stdout, stderr) = ws.credential(&op).await?;
    ensure!(code == 0, "{stderr}");
    let refreshed = exec_credential(&stdout)?;
    let after = ws.cache()?;
    assert_ne!(after["refreshToken"], cached["refreshToken"], "refreshed");
    assert_eq!(refreshed["status"]["token"], after["idToken"]);
    assert!(after["expiry"].as_i64().context("expiry")? > 0);
    let claims = jwt_claims(after["idToken"].as_str().context("idToken")?)?;
    assert_eq!(claims["email"], "alice@example.com");
    #[cfg(unix)]
    assert_eq!(mode(&ws.cache_file()?)?, 0o600);

    // A refresh token the provider refuses: a clear error, exit 4, no interactive sign-in.
    ws.rewrite_cache(|c| {
        c["expiry"] = Value::from(0);
        c["refreshToken"] = Value::from("not-a-refresh-token");
    })?;
    let (code, stdout, stderr) = ws.credential(&op).await?;
    assert_eq!(code, 4, "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("refreshing it failed") && stderr.contains("portico login --sso"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn credential_without_a_sign_in_says_how_to_sign_in() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let ws = Workstation::new()?;
    let (code, _, stderr) = ws.credential(&op).await?;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("portico login --sso"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn concurrent_credential_runs_refresh_once() -> Result<()> {
    // The provider rotates refresh tokens and treats a reused one as theft (it revokes the
    // sign-in): concurrent kubectl runs must not each refresh with the same token.
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let ws = Workstation::new()?;
    login_with_code_flow(&ws, &op, "alice", &["--no-kubeconfig"]).await?;
    ws.rewrite_cache(|c| c["expiry"] = Value::from(0))?;
    let mut args = vec!["credential".to_owned()];
    args.extend(ws.provider_args(&op));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // All four start before any finishes.
    let children: Vec<Child> = (0..4)
        .map(|_| ws.command(&args).spawn())
        .collect::<std::io::Result<_>>()?;
    let mut tokens = Vec::new();
    for child in children {
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .context("portico credential did not finish in 60 s")??;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.success(), "a concurrent run failed: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        tokens.push(exec_credential(&stdout)?["status"]["token"].clone());
    }
    let cache = ws.cache()?;
    assert!(tokens.iter().all(|t| *t == cache["idToken"]), "{tokens:?}");
    // The sign-in still works afterwards: its current refresh token is accepted.
    ws.rewrite_cache(|c| c["expiry"] = Value::from(0))?;
    let (code, _, stderr) = ws.credential(&op).await?;
    ensure!(code == 0, "{stderr}");
    Ok(())
}

/// A kubeconfig for the simulator whose user runs `portico credential`.
fn exec_kubeconfig(sim: &kube_sim::KubeSim, ws: &Workstation, op: &OidcProvider) -> String {
    let ca = sim.ca_pem().expect("a TLS simulator");
    let ca_b64 = base64_encode(ca.as_bytes());
    let args: Vec<String> = std::iter::once("credential".to_owned())
        .chain(ws.provider_args(op))
        .map(|a| format!("        - {a:?}\n"))
        .collect();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {}\n    \
         certificate-authority-data: {ca_b64}\ncontexts:\n- name: sim\n  context:\n    cluster: \
         sim\n    user: sso\ncurrent-context: sim\nusers:\n- name: sso\n  user:\n    exec:\n      \
         apiVersion: client.authentication.k8s.io/v1\n      command: {CLI:?}\n      args:\n{}      \
         interactiveMode: Never\n      provideClusterInfo: false\n",
        sim.url(),
        args.concat()
    )
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn kubectl_gets_pods_with_portico_credential_as_its_exec_plugin() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let ws = Workstation::new()?;
    login_with_code_flow(&ws, &op, "alice", &["--no-kubeconfig"]).await?;
    let sim = kube_sim::KubeSim::start().await?;
    let id_token = ws.cache()?["idToken"]
        .as_str()
        .context("idToken")?
        .to_owned();
    sim.add_token(&id_token, "alice@example.com");
    let kubectl = Kubectl::new(&exec_kubeconfig(&sim, &ws, &op))?;
    kubectl
        .run(&["get", "pods", "-n", "default"])
        .await?
        .success()?;
    let authenticated = sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/pods"))
        .all(|r| r.user.as_deref() == Some("alice@example.com"));
    assert!(
        authenticated,
        "kubectl sent the ID token from portico credential"
    );

    // With the cached token expired, a new kubectl run gets a refreshed one from the plugin.
    ws.rewrite_cache(|c| c["expiry"] = Value::from(0))?;
    let before = ws.cache()?["refreshToken"].clone();
    // The simulator may not know the refreshed token (then kubectl fails with 401); what it
    // received is what counts.
    let _ = kubectl.run(&["get", "pods", "-n", "default"]).await?;
    let after = ws.cache()?;
    assert_ne!(after["refreshToken"], before, "the plugin refreshed");
    let bearer = format!("Bearer {}", after["idToken"].as_str().context("idToken")?);
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.header("authorization") == Some(bearer.as_str())),
        "kubectl sent the refreshed ID token"
    );
    Ok(())
}

/// A gateway that accepts the provider's ID tokens (issued to the CLI client), with group
/// names prefixed `oidc:`.
async fn oidc_gateway(op: &OidcProvider) -> Result<TestGateway> {
    Ok(TestGateway::builder().args(op.gateway_args()).start().await)
}

#[tokio::test]
async fn the_gateway_announces_its_provider_only_when_it_has_one() -> Result<()> {
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let gw = oidc_gateway(&op).await?;
    let announced: Value = gw
        .request(reqwest::Method::GET, "/api/v1/auth/oidc")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(announced["issuerUrl"], op.issuer());
    assert_eq!(announced["clientId"], CLI_CLIENT_ID);
    let plain = TestGateway::builder().start().await;
    let response = plain
        .request(reqwest::Method::GET, "/api/v1/auth/oidc")
        .send()
        .await?;
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    // And `login --sso` against it says what to do.
    let ws = Workstation::new()?;
    let ca = ws.dir.path().join("gateway-ca.crt");
    std::fs::write(
        &ca,
        plain
            .gateway()
            .app()
            .tls
            .as_ref()
            .and_then(|t| t.ca_pem.clone())
            .context("a generated CA")?,
    )?;
    let out = ws
        .command(&[
            "login",
            "--sso",
            "--no-browser",
            "--server",
            &plain.url,
            "--ca-file",
            &ca.display().to_string(),
        ])
        .output()
        .await?;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("announces no OpenID provider"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn login_through_the_gateway_writes_a_kubeconfig_kubectl_uses_on_two_clusters() -> Result<()>
{
    let op = OidcProvider::start(OidcOptions::default()).await?;
    let (dev, prod) = (KubeSim::start().await?, KubeSim::start().await?);
    let gw = oidc_gateway(&op).await?;
    for (id, sim, env) in [("dev-eu", &dev, "dev"), ("prod-eu", &prod, "prod")] {
        gw.admin_post(
            "/api/v1/clusters",
            json!({"id": id, "kubeconfig": sim.kubeconfig(), "labels": {"env": env}}),
        )
        .await?;
        gw.admin_post(&format!("/api/v1/clusters/{id}/connect"), json!({}))
            .await?;
    }
    // Developers reach dev clusters; ops (alice, not bob) also production.
    gw.admin_post(
        "/api/v1/grants",
        json!({"subject": {"kind": "group", "name": "oidc:dev"}, "selector": "env=dev",
               "access": "write"}),
    )
    .await?;
    gw.admin_post(
        "/api/v1/grants",
        json!({"subject": {"kind": "group", "name": "oidc:ops"}, "cluster": "prod-eu",
               "access": "read"}),
    )
    .await?;

    let run = |user: &'static str| {
        let op = &op;
        let gw = &gw;
        async move {
            let ws = Workstation::new()?;
            let gateway_ca = ws.dir.path().join("gateway-ca.crt");
            std::fs::write(
                &gateway_ca,
                gw.gateway()
                    .app()
                    .tls
                    .as_ref()
                    .and_then(|t| t.ca_pem.clone())
                    .context("a generated CA")?,
            )?;
            let kubeconfig = ws.dir.path().join("kube/config.yaml");
            let oidc_ca = op.ca_file().context("CA")?.display().to_string();
            let cache = ws.cache_dir().display().to_string();
            // No issuer or client id: the gateway announces them.
            let (report, _) = sign_in(
                &ws,
                op,
                user,
                &[
                    "--server",
                    &gw.url,
                    "--ca-file",
                    &gateway_ca.display().to_string(),
                    "--oidc-ca-file",
                    &oidc_ca,
                    "--token-cache-dir",
                    &cache,
                    "--kubeconfig",
                    &kubeconfig.display().to_string(),
                    "--interactive-mode",
                    "Never",
                ],
            )
            .await?;
            assert_eq!(report["issuerUrl"], op.issuer());
            let text = std::fs::read_to_string(&kubeconfig)?;
            #[cfg(unix)]
            assert_eq!(mode(&kubeconfig)?, 0o600);
            let id_token = ws.cache()?["idToken"]
                .as_str()
                .context("idToken")?
                .to_owned();
            assert!(
                !text.contains(&id_token),
                "no token in the kubeconfig:\n{text}"
            );
            assert!(text.contains("client.authentication.k8s.io/v1"), "{text}");
            assert!(text.contains("interactiveMode: Never"), "{text}");
            anyhow::Ok((ws, Kubectl::new(&text)?))
        }
    };

    let (alice_ws, alice) = run("alice").await?;
    for cluster in ["dev-eu", "prod-eu"] {
        alice
            .run(&["--context", cluster, "get", "pods", "-n", "default"])
            .await?
            .success()
            .with_context(|| format!("alice on {cluster}"))?;
    }
    // The stored context works for the CLI's own commands too (the cached ID token).
    let out = alice_ws
        .command(&["cluster", "list", "-o", "json"])
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("dev-eu") && stdout.contains("prod-eu"),
        "{stdout}"
    );
    let (_bob_ws, bob) = run("bob").await?;
    bob.run(&["--context", "dev-eu", "get", "pods", "-n", "default"])
        .await?
        .success()
        .context("bob on dev-eu")?;
    // Bob's kubeconfig lists only what his groups reach.
    let denied = bob
        .run(&["--context", "prod-eu", "get", "pods", "-n", "default"])
        .await?;
    assert_ne!(denied.code, 0, "{}", denied.stdout);
    Ok(())
}
