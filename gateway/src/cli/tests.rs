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
        ("PORTICO_URL", "https://gw.example:3618"),
        ("PORTICO_TOKEN", "tok"),
        ("PORTICO_CA_FILE", "/ca.crt"),
    ]);
    let cli = Cli::parse_with_env(["portico", "kubeconfig", "--cluster", "c"], &vars).unwrap();
    let Command::Kubeconfig(args) = cli.command else {
        panic!("kubeconfig parsed")
    };
    assert_eq!(args.gateway.server, "https://gw.example:3618");
    assert_eq!(args.gateway.token, "tok");
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
    assert_eq!(args.gateway.token, "flag", "the flag wins");
    assert_eq!(args.gateway.ca_file, Some(PathBuf::from("/ca.crt")));
    assert_eq!(args.output, OutputFormat::Json);
    let cli = Cli::parse_with_env(["portico", "job", "list"], &vars).unwrap();
    let Command::Job(JobCommand::List(args)) = cli.command else {
        panic!("job list parsed")
    };
    assert_eq!(args.gateway.token, "tok");
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
