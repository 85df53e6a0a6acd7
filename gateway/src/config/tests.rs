use std::collections::HashMap;
use std::time::Duration;

use super::*;

fn config(args: &[&str], vars: &[(&str, &str)]) -> Result<Config> {
    let env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_args(ServeArgs::from_args_and_env(args, &env).expect("arguments parse"))
}

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[test]
fn defaults_are_standalone_sqlite() {
    let c = config(&[], &[]).unwrap();
    assert_eq!(c.database, DatabaseUrl::Sqlite("./data/portico.db".into()));
    assert_eq!(c.host, HostCluster::Standalone);
    assert_eq!(c.lease.duration, Duration::from_secs(60));
    assert_eq!(c.lease.renew_interval, Duration::from_secs(20));
    assert_eq!(c.leader.renew_deadline, Duration::from_secs(50));
    assert!(c.instance_id.len() > 7, "{}", c.instance_id);
    let suffix = c.instance_id.rsplit('-').next().unwrap();
    assert_eq!(suffix.len(), 6);
    assert!(
        suffix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.tls, TlsMode::SelfSigned);
}

#[test]
fn tls_files_and_plain_http_exclude_each_other() {
    let c = config(&["--tls-cert-file", "/c", "--tls-key-file", "/k"], &[]).unwrap();
    assert_eq!(
        c.tls,
        TlsMode::Files {
            cert: "/c".into(),
            key: "/k".into()
        }
    );
    let err = config(
        &[
            "--tls-cert-file",
            "/c",
            "--tls-key-file",
            "/k",
            "--plain-http",
        ],
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("--plain-http"), "{err}");
}

#[test]
fn renew_interval_not_below_duration_falls_back_to_a_third() {
    let c = config(
        &[],
        &[
            ("LEASE_DURATION_SECONDS", "15"),
            ("LEASE_RENEW_INTERVAL_SECONDS", "15"),
        ],
    )
    .unwrap();
    assert_eq!(c.lease.renew_interval, Duration::from_secs(5));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);

    let c = config(
        &[
            "--lease-duration-seconds",
            "2",
            "--lease-renew-interval-seconds",
            "0",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(
        c.lease.renew_interval,
        Duration::from_secs(1),
        "never below 1 s"
    );
}

#[test]
fn postgres_requires_a_secret_key_and_warns_standalone() {
    let err = config(&["--database-url", "postgres://u:p@localhost/db"], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::SecretKeyRequired), "{err}");
    assert!(err.to_string().contains("SECRET_KEY"));

    let err = config(
        &["--database-url", "postgres://u:p@localhost/db"],
        &[("SECRET_KEY", KEY)],
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::TlsRequired), "{err}");
    let c = config(
        &[
            "--database-url",
            "postgres://u:p@localhost/db",
            "--plain-http",
        ],
        &[("SECRET_KEY", KEY)],
    )
    .unwrap();
    assert_eq!(c.tls, TlsMode::Off);
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("standalone"), "{:?}", c.warnings);
    assert_eq!(c.database.redacted(), "postgres://***@localhost/db");
}

#[test]
fn bad_values_name_their_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--listen", "nowhere"], "--listen"),
        (&["--database-url", "mysql://x"], "--database-url"),
        (&["--secret-key", "too-short"], "--secret-key"),
        (
            &["--lease-duration-seconds", "0"],
            "--lease-duration-seconds",
        ),
        (&["--resync-period-seconds", "0"], "--resync-period-seconds"),
        (&["--product-name", "Bad_Name"], "--product-name"),
        (&["--admin-token", "short"], "--admin-token"),
        (&["--instance-id", "has space"], "--instance-id"),
    ];
    for (args, flag) in cases {
        let err = config(args, &[]).unwrap_err().to_string();
        assert!(err.contains(flag), "{args:?}: `{err}` should name {flag}");
    }
}

#[test]
fn leader_timings_follow_client_go_rules() {
    let err = config(
        &[
            "--leader-lease-duration-seconds",
            "10",
            "--leader-renew-deadline-seconds",
            "10",
        ],
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("greater than the renew deadline"), "{err}");
    let err = config(
        &[
            "--leader-renew-deadline-seconds",
            "12",
            "--leader-retry-period-seconds",
            "10",
        ],
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("1.2"), "{err}");
    let c = config(
        &[
            "--leader-lease-duration-seconds",
            "15",
            "--leader-renew-deadline-seconds",
            "10",
            "--leader-retry-period-seconds",
            "2",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.leader.retry_period, Duration::from_secs(2));
}

#[test]
fn host_cluster_choice_follows_precedence() {
    let c = config(&["--host-cluster-id", "hub", "--in-cluster"], &[]).unwrap();
    assert_eq!(c.host, HostCluster::ClusterId("hub".into()));
    let c = config(&["--in-cluster", "--host-kubeconfig", "/k"], &[]).unwrap();
    assert_eq!(c.host, HostCluster::InCluster);
    let c = config(&["--host-kubeconfig", "/k"], &[]).unwrap();
    assert_eq!(c.host, HostCluster::Kubeconfig("/k".into()));
}

#[test]
fn advertise_address_defaults_to_pod_ip_then_listen() {
    let c = config(&["--listen", "0.0.0.0:4000"], &[("POD_IP", "10.1.2.3")]).unwrap();
    assert_eq!(c.advertise_address, "10.1.2.3:4000");
    let c = config(&["--listen", "127.0.0.1:4000"], &[]).unwrap();
    assert_eq!(c.advertise_address, "127.0.0.1:4000");
    let c = config(
        &[],
        &[
            ("ADVERTISE_ADDRESS", "portico-0:3618"),
            ("POD_IP", "10.1.2.3"),
        ],
    )
    .unwrap();
    assert_eq!(c.advertise_address, "portico-0:3618");
}

#[test]
fn cluster_server_flags_reach_the_configuration() {
    let c = config(&[], &[]).unwrap();
    assert!(!c.allow_insecure_cluster_credentials && !c.deny_local_cluster_servers);
    let c = config(
        &["--deny-local-cluster-servers"],
        &[("ALLOW_INSECURE_CLUSTER_CREDENTIALS", "true")],
    )
    .unwrap();
    assert!(c.allow_insecure_cluster_credentials && c.deny_local_cluster_servers);
}

#[test]
fn oidc_follows_kube_apiserver_flags() {
    assert!(config(&[], &[]).unwrap().oidc.is_none());
    let issuer = ["--oidc-issuer-url", "https://idp.example.com"];
    let with = |more: &[&str]| {
        let args: Vec<&str> = issuer.iter().chain(more).copied().collect();
        config(&args, &[])
    };
    let c = with(&["--oidc-client-id", "portico"])
        .unwrap()
        .oidc
        .unwrap();
    assert_eq!(c.username_claim, "email");
    assert_eq!(c.username_prefix, "", "no prefix for email");
    assert_eq!(c.groups_claim, "groups");
    assert_eq!(c.signing_algs, ["RS256"]);
    let c = with(&["--oidc-client-id", "p", "--oidc-username-claim", "sub"])
        .unwrap()
        .oidc
        .unwrap();
    assert_eq!(c.username_prefix, "https://idp.example.com#");
    let c = with(&[
        "--oidc-client-id",
        "p",
        "--oidc-username-claim",
        "sub",
        "--oidc-username-prefix",
        "-",
        "--oidc-required-claim",
        "hd=example.com",
        "--oidc-required-claim",
        "tier=a=b",
        "--oidc-signing-algs",
        "ES256,RS256",
    ])
    .unwrap()
    .oidc
    .unwrap();
    assert_eq!(c.username_prefix, "");
    assert_eq!(
        c.required_claims,
        [
            ("hd".to_owned(), "example.com".to_owned()),
            ("tier".to_owned(), "a=b".to_owned())
        ]
    );
    assert_eq!(c.signing_algs, ["ES256", "RS256"]);
    let env = config(
        &[],
        &[
            ("OIDC_ISSUER_URL", "https://idp.example.com/realms/x"),
            ("OIDC_CLIENT_ID", "portico"),
            ("OIDC_REQUIRED_CLAIM", "a=1,b=2"),
        ],
    )
    .unwrap()
    .oidc
    .unwrap();
    assert_eq!(env.required_claims.len(), 2);

    for (bad, says) in [
        (&["--oidc-client-id", "p"][..], "needs --oidc-issuer-url"),
        (&issuer[..], "--oidc-client-id is required"),
        (
            &[
                "--oidc-issuer-url",
                "http://idp.example.com",
                "--oidc-client-id",
                "p",
            ],
            "must be https://",
        ),
        (
            &[
                issuer[0],
                issuer[1],
                "--oidc-client-id",
                "p",
                "--oidc-signing-algs",
                "HS256",
            ],
            "`HS256` is not accepted",
        ),
        (
            &[
                issuer[0],
                issuer[1],
                "--oidc-client-id",
                "p",
                "--oidc-signing-algs",
                "none",
            ],
            "`none` is not accepted",
        ),
        (
            &[
                issuer[0],
                issuer[1],
                "--oidc-client-id",
                "p",
                "--oidc-required-claim",
                "x",
            ],
            "not key=value",
        ),
        (
            &[
                issuer[0],
                issuer[1],
                "--oidc-client-id",
                "p",
                "--oidc-ca-file",
                "/no/such",
            ],
            "cannot be read",
        ),
    ] {
        let err = config(bad, &[]).unwrap_err().to_string();
        assert!(err.contains(says), "{bad:?}: {err}");
    }
}
