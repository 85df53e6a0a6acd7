use std::collections::HashMap;
use std::path::PathBuf;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults_match_the_documented_table() {
    let args = ServeArgs::from_args_and_env::<&str>(&[], &env(&[])).unwrap();
    assert_eq!(args.listen, "0.0.0.0:3618");
    assert_eq!(args.database_url, "sqlite://./data/portico.db");
    assert_eq!(args.lease_duration_seconds, 60);
    assert_eq!(args.lease_renew_interval_seconds, 20);
    assert_eq!(args.leader_lease_duration_seconds, 60);
    assert_eq!(args.leader_renew_deadline_seconds, 50);
    assert_eq!(args.leader_retry_period_seconds, 10);
    assert_eq!(args.resync_period_seconds, 30);
    assert_eq!(args.product_name, "portico");
    assert_eq!(args.log, "info");
    assert_eq!(args.log_format, LogFormat::Text);
    assert!(!args.in_cluster && !args.connect_cluster);
    assert!(args.admin_token.is_none() && args.secret_key.is_none());
}

#[test]
fn environment_variables_are_read_and_flags_win() {
    let vars = env(&[
        ("LISTEN", "127.0.0.1:9000"),
        ("LEASE_DURATION_SECONDS", "15"),
        ("IN_CLUSTER", "1"),
        ("CONNECT_CLUSTER", "true"),
        ("PRODUCT_NAME", "acme"),
        ("RUST_LOG", "debug"),
        ("LOG_FORMAT", "json"),
    ]);
    let args = ServeArgs::from_args_and_env(&["--listen", "127.0.0.1:9001"], &vars).unwrap();
    assert_eq!(args.listen, "127.0.0.1:9001", "a flag beats its variable");
    assert_eq!(args.lease_duration_seconds, 15);
    assert!(args.in_cluster);
    assert!(args.connect_cluster);
    assert_eq!(args.product_name, "acme");
    assert_eq!(args.log, "debug");
    assert_eq!(args.log_format, LogFormat::Json);
}

#[test]
fn boolean_flags_accept_bare_and_explicit_forms() {
    let args = ServeArgs::from_args_and_env(&["--in-cluster"], &env(&[])).unwrap();
    assert!(args.in_cluster);
    let args =
        ServeArgs::from_args_and_env(&["--in-cluster=false"], &env(&[("IN_CLUSTER", "yes")]))
            .unwrap();
    assert!(!args.in_cluster);
}

#[test]
fn a_renew_interval_that_is_not_a_number_is_a_clear_error() {
    let err = ServeArgs::from_args_and_env::<&str>(
        &[],
        &env(&[("LEASE_RENEW_INTERVAL_SECONDS", "soon")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("soon"), "{err}");
    assert!(err.contains("--lease-renew-interval-seconds"), "{err}");
    assert!(err.contains("invalid digit"), "{err}");

    let err = ServeArgs::from_args_and_env(&["--lease-duration-seconds=-5"], &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--lease-duration-seconds"), "{err}");
}

#[test]
fn unknown_log_format_is_rejected() {
    let err = ServeArgs::from_args_and_env::<&str>(&[], &env(&[("LOG_FORMAT", "xml")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("xml") && err.contains("json"), "{err}");
}

#[test]
fn gateway_commands_read_portico_variables_at_every_depth() {
    let vars = env(&[
        ("PORTICO_SERVER", "https://gw.example:3618"),
        ("PORTICO_TOKEN", "tok"),
        ("PORTICO_CA_FILE", "/ca.crt"),
        ("PORTICO_CONTEXT", "prod"),
        ("PORTICO_CONFIG", "/etc/portico.yaml"),
    ]);
    let cli = Cli::parse_with_env(["portico", "kubeconfig", "--cluster", "c"], &vars).unwrap();
    let Command::Kubeconfig(args) = cli.command else {
        panic!("kubeconfig parsed")
    };
    assert_eq!(args.gateway.server(), Some("https://gw.example:3618"));
    assert_eq!(args.gateway.token.as_deref(), Some("tok"));
    assert_eq!(args.gateway.context.as_deref(), Some("prod"));
    assert_eq!(
        args.gateway.config.path(),
        Some(PathBuf::from("/etc/portico.yaml"))
    );
    let cli = Cli::parse_with_env(
        [
            "portico", "job", "runs", "--job", "j", "--token", "flag", "-o", "json",
        ],
        &vars,
    )
    .unwrap();
    let Command::Job(JobCommand::Runs(args)) = cli.command else {
        panic!("job runs parsed")
    };
    assert_eq!(args.job.as_deref(), Some("j"));
    assert_eq!(args.gateway.token.as_deref(), Some("flag"), "the flag wins");
    assert_eq!(args.gateway.ca_file, Some(PathBuf::from("/ca.crt")));
    assert_eq!(args.output, OutputFormat::Json);
    let cli =
        Cli::parse_with_env(["portico", "cluster", "delete", "dev", "-o", "yaml"], &vars).unwrap();
    let Command::Cluster(ClusterCommand::Delete(args)) = cli.command else {
        panic!("cluster delete parsed")
    };
    assert_eq!(args.id, "dev");
    assert_eq!(args.remote.gateway.token.as_deref(), Some("tok"));
    assert_eq!(args.remote.output, OutputFormat::Yaml);
    // The former variable name still works.
    let cli = Cli::parse_with_env(
        ["portico", "job", "list"],
        &env(&[("PORTICO_URL", "https://old.example")]),
    )
    .unwrap();
    let Command::Job(JobCommand::List(args)) = cli.command else {
        panic!("job list parsed")
    };
    assert_eq!(args.gateway.server(), Some("https://old.example"));
    assert!(args.gateway.token.is_none());
}

#[test]
fn the_config_file_defaults_under_the_config_home() {
    let parse = |vars: &[(&str, &str)]| {
        let cli = Cli::parse_with_env(["portico", "context", "list"], &env(vars)).unwrap();
        let Command::Context(ContextCommand::List(args)) = cli.command else {
            panic!("context list parsed")
        };
        args.config.path()
    };
    assert_eq!(
        parse(&[("HOME", "/home/a")]),
        Some(PathBuf::from("/home/a/.config/portico/config.yaml"))
    );
    assert_eq!(
        parse(&[("HOME", "/home/a"), ("XDG_CONFIG_HOME", "/xdg")]),
        Some(PathBuf::from("/xdg/portico/config.yaml"))
    );
    assert_eq!(
        parse(&[("HOME", "/home/a"), ("PORTICO_CONFIG", "/p.yaml")]),
        Some(PathBuf::from("/p.yaml"))
    );
    assert_eq!(parse(&[]), None);
}

#[test]
fn every_command_parses_its_flags() {
    let vars = env(&[]);
    for argv in [
        &[
            "portico",
            "login",
            "--server",
            "https://gw",
            "--context",
            "x",
        ][..],
        &["portico", "logout"],
        &["portico", "context", "use", "x"],
        &["portico", "context", "delete", "x"],
        &[
            "portico",
            "cluster",
            "add",
            "dev",
            "-f",
            "k.yaml",
            "--kube-context",
            "c",
            "-l",
            "env=prod",
            "--connect",
        ],
        &["portico", "cluster", "list", "-o", "json"],
        &["portico", "cluster", "get", "dev"],
        &["portico", "cluster", "update", "dev", "--label", "env-"],
        &["portico", "cluster", "connect", "dev"],
        &["portico", "cluster", "disconnect", "dev"],
        &["portico", "cluster", "kubeconfig", "dev"],
        &[
            "portico",
            "cluster",
            "import",
            "--kubeconfig",
            "k",
            "--kube-context",
            "a",
        ],
        &[
            "portico", "token", "create", "t", "--grant", "dev=read", "--ttl", "1d",
        ],
        &["portico", "token", "list"],
        &["portico", "token", "revoke", "t"],
        &["portico", "plugin", "list"],
        &["portico", "plugin", "install", "x.wasm", "--replace"],
        &["portico", "plugin", "enable", "x"],
        &["portico", "plugin", "disable", "x"],
        &["portico", "plugin", "config", "x", "{}"],
        &["portico", "plugin", "config", "x", "--reset"],
        &["portico", "plugin", "run", "x", "--cluster", "c"],
        &["portico", "plugin", "new", "x", "--lang", "rust"],
        &[
            "portico", "plugin", "new", "x", "--lang", "python", "--dir", "d",
        ],
        &[
            "portico",
            "plugin",
            "new",
            "x",
            "--lang",
            "js",
            "--portico",
            ".",
        ],
        &["portico", "job", "update", "j", "-f", "j.json"],
        &["portico", "job", "delete", "j"],
        &["portico", "run", "list", "--status", "failed"],
        &["portico", "run", "get", "r"],
        &[
            "portico",
            "finding",
            "list",
            "--failed",
            "--severity",
            "high",
        ],
        &["portico", "finding", "summary"],
        &[
            "portico",
            "helm",
            "repo",
            "add",
            "r",
            "https://charts",
            "--username",
            "u",
            "--password",
            "p",
        ],
        &["portico", "helm", "repo", "list"],
        &["portico", "helm", "repo", "update", "r", "--no-auth"],
        &["portico", "helm", "repo", "sync", "--no-wait"],
        &["portico", "helm", "repo", "delete", "r"],
        &["portico", "chart", "search", "web", "--versions"],
        &[
            "portico",
            "webhook",
            "create",
            "w",
            "--url",
            "https://h",
            "--secret",
            "s",
            "--event",
            "connected",
            "--cluster",
            "dev",
        ],
        &["portico", "webhook", "list"],
        &[
            "portico",
            "webhook",
            "update",
            "w",
            "--all-clusters",
            "--disable",
        ],
        &["portico", "webhook", "delete", "w"],
        &["portico", "webhook", "deliveries", "w", "--limit", "5"],
        &["portico", "instances"],
        &["portico", "leader"],
        &["portico", "audit", "--kind", "api", "--token-name", "admin"],
        &["portico", "completion", "zsh"],
        &["portico", "version", "--client"],
    ] {
        Cli::parse_with_env(argv, &vars).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    }
    for bad in [
        &["portico", "plugin", "config", "x", "{}", "--reset"][..],
        &["portico", "finding", "list", "--failed", "--passed"],
        &["portico", "webhook", "update", "w", "--enable", "--disable"],
        &["portico", "token", "create", "t", "--role", "root"],
        &[
            "portico",
            "helm",
            "repo",
            "add",
            "r",
            "u",
            "--username",
            "x",
        ],
        &["portico", "plugin", "install"],
        &["portico", "plugin", "new", "x"],
        &["portico", "plugin", "new", "x", "--lang", "go"],
    ] {
        let err = Cli::parse_with_env(bad, &vars).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{bad:?}");
    }
    <Cli as clap::CommandFactory>::command().debug_assert();
}

#[test]
fn the_version_names_the_build() {
    let long = version::LONG_VERSION;
    assert!(long.starts_with(env!("CARGO_PKG_VERSION")), "{long}");
    assert!(long.contains("wasmtime: 48."), "{long}");
    assert!(long.contains("wit:      portico:plugin@"), "{long}");
    assert!(!version::COMMIT.is_empty());
}

#[test]
fn cluster_server_flags_default_off_and_read_their_variables() {
    let args = ServeArgs::from_args_and_env::<&str>(&[], &env(&[])).unwrap();
    assert!(!args.cluster_servers.allow_insecure_cluster_credentials);
    assert!(!args.cluster_servers.deny_local_cluster_servers);
    let vars = env(&[
        ("ALLOW_INSECURE_CLUSTER_CREDENTIALS", "yes"),
        ("DENY_LOCAL_CLUSTER_SERVERS", "1"),
    ]);
    let args = ServeArgs::from_args_and_env::<&str>(&[], &vars).unwrap();
    assert!(args.cluster_servers.allow_insecure_cluster_credentials);
    assert!(args.cluster_servers.deny_local_cluster_servers);
    let args =
        ServeArgs::from_args_and_env(&["--deny-local-cluster-servers=false"], &vars).unwrap();
    assert!(
        !args.cluster_servers.deny_local_cluster_servers,
        "the flag wins"
    );
    let args =
        ServeArgs::from_args_and_env(&["--allow-insecure-cluster-credentials"], &env(&[])).unwrap();
    assert!(args.cluster_servers.allow_insecure_cluster_credentials);

    // `portico cluster import` reads the same flags and variables.
    let cli = Cli::parse_with_env(
        [
            "portico",
            "cluster",
            "import",
            "--kubeconfig",
            "/k",
            "--allow-insecure-cluster-credentials",
        ],
        &env(&[("DENY_LOCAL_CLUSTER_SERVERS", "true")]),
    )
    .unwrap();
    let Command::Cluster(ClusterCommand::Import(args)) = cli.command else {
        panic!("cluster import parsed")
    };
    assert!(args.cluster_servers.allow_insecure_cluster_credentials);
    assert!(args.cluster_servers.deny_local_cluster_servers);
    let err =
        ServeArgs::from_args_and_env::<&str>(&[], &env(&[("DENY_LOCAL_CLUSTER_SERVERS", "maybe")]))
            .unwrap_err()
            .to_string();
    assert!(err.contains("maybe"), "{err}");
}

#[test]
fn login_sso_and_credential_parse_and_device_needs_sso() {
    let vars = env(&[("KUBERNETES_EXEC_INFO", r#"{"spec":{"interactive":true}}"#)]);
    let cli = Cli::parse_with_env(
        [
            "portico",
            "login",
            "--sso",
            "--device",
            "--server",
            "https://gw",
            "--oidc-scope",
            "openid,groups",
            "--interactive-mode",
            "Never",
        ],
        &vars,
    )
    .unwrap();
    let Command::Login(args) = cli.command else {
        panic!("not login")
    };
    assert!(args.sso && args.device);
    assert_eq!(args.oidc.oidc_scope, ["openid", "groups"]);
    assert_eq!(args.interactive_mode, InteractiveMode::Never);
    // --device, --no-browser and --kubeconfig mean nothing without --sso; --sso takes no token.
    for argv in [
        &["portico", "login", "--device", "--server", "https://gw"][..],
        &["portico", "login", "--no-browser"],
        &["portico", "login", "--sso", "--token", "pt_x"],
        &[
            "portico",
            "login",
            "--sso",
            "--kubeconfig",
            "k",
            "--no-kubeconfig",
        ],
    ] {
        assert!(Cli::parse_with_env(argv, &vars).is_err(), "{argv:?}");
    }
    let cli = Cli::parse_with_env(
        [
            "portico",
            "credential",
            "--oidc-issuer-url",
            "https://idp",
            "--oidc-client-id",
            "cli",
        ],
        &vars,
    )
    .unwrap();
    let Command::Credential(args) = cli.command else {
        panic!("not credential")
    };
    assert_eq!(args.oidc.oidc_client_id.as_deref(), Some("cli"));
    assert_eq!(
        args.exec_info.as_deref(),
        Some(r#"{"spec":{"interactive":true}}"#)
    );
}
