//! The `portico` binary as a script runs it: `--version`, completion scripts, and exit codes by
//! class of failure, against a gateway started in this process (plain HTTP, on port 0). Every
//! run gets a cleared environment and a config file in a temporary folder.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use portico::cli::ServeArgs;
use portico::config::Config;
use portico::server::Gateway;

const ADMIN: &str = "pt_binary-test-admin-token";

/// Runs `portico args…` with only `PORTICO_CONFIG` (and `vars`) set, `stdin` as its input.
fn portico(config: &Path, vars: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portico"));
    command
        .args(args)
        .env_clear()
        .env("PORTICO_CONFIG", config)
        .envs(vars.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run portico");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("portico ends")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn version_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let out = portico(&config, &[], &["--version"], None);
    assert!(out.status.success());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("portico {}", env!("CARGO_PKG_VERSION")));
    assert!(lines[1].starts_with("commit:   "), "{text}");
    assert!(lines[2].starts_with("wasmtime: 48."), "{text}");
    assert!(lines[3].starts_with("wit:      portico:plugin@"), "{text}");
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef portico"),
        ("fish", "complete -c portico"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = portico(&config, &[], &["completion", shell], None);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: no `{marker}`");
        assert!(script.contains("webhook"), "{shell}");
    }
    // Usage errors are 2, as clap's own.
    let out = portico(&config, &[], &["cluster", "frobnicate"], None);
    assert_eq!(out.status.code(), Some(2));
    let out = portico(&config, &[], &["completion", "tcsh"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_against_a_gateway() {
    let data = tempfile::tempdir().unwrap();
    let args = ServeArgs::from_args_and_env(
        &[
            "--listen",
            "127.0.0.1:0",
            "--plain-http",
            "--admin-token",
            ADMIN,
            "--database-url",
            &format!("sqlite://{}/portico.db", data.path().display()),
        ],
        &HashMap::new(),
    )
    .unwrap();
    let gateway = Gateway::start(Config::from_args(args).unwrap())
        .await
        .unwrap();
    let url = format!("http://{}", gateway.local_addr());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portico/config.yaml");

    let run = |vars: Vec<(&'static str, String)>, args: Vec<String>, stdin: Option<String>| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            portico(&config, &vars, &args, stdin.as_deref())
        })
    };
    let argv = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();

    // Not logged in: 4, and the message says what to do.
    let out = run(vec![], argv(&["cluster", "list"]), None).await.unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("portico login"), "{}", stderr(&out));

    // Login with the token on standard input; the config file is private.
    let out = run(
        vec![],
        argv(&["login", "--server", &url, "--context", "bin"]),
        Some(format!("{ADMIN}\n")),
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("context `bin`"), "{}", stdout(&out));
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Success is 0 with the answer on stdout; 404 is 6 with the API's message on stderr.
    let out = run(vec![], argv(&["cluster", "list", "-o", "json"]), None)
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed["items"], serde_json::json!([]));
    let out = run(vec![], argv(&["cluster", "get", "nope"]), None)
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    let message = stderr(&out);
    assert!(
        message.starts_with("error: ") && message.contains("404") && message.contains(&url),
        "{message}"
    );

    // A read-only token: 5 for an admin action.
    let out = run(
        vec![],
        argv(&[
            "token", "create", "reader", "--grant", "*=read", "-o", "json",
        ]),
        None,
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let created: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let reader = created["token"].as_str().unwrap().to_owned();
    let out = run(
        vec![("PORTICO_TOKEN", reader.clone())],
        argv(&["cluster", "delete", "any"]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // A token that is no token: 4; a server that is not there: 3.
    let out = run(vec![], argv(&["leader", "--token", "pt_nope"]), None)
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = run(
        vec![("PORTICO_SERVER", nowhere.clone())],
        argv(&["instances", "--token", "x"]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains(&nowhere), "{}", stderr(&out));

    // The versions, as YAML: the gateway's own `/version` needs no token.
    let out = run(vec![], argv(&["version", "-o", "yaml"]), None)
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("client:") && text.contains("server:"),
        "{text}"
    );
    gateway.shutdown().await;
}
