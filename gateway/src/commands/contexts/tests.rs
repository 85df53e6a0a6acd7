use std::os::unix::fs::PermissionsExt;

use super::*;

fn location(file: &Path) -> ConfigLocation {
    ConfigLocation {
        config_file: Some(file.to_path_buf()),
        ..ConfigLocation::default()
    }
}

fn context(name: &str, server: &str, token: &str) -> Context {
    Context {
        name: name.to_owned(),
        server: server.to_owned(),
        certificate_authority: Some(format!("PEM of {name}")),
        credential: Some(Credential::Token {
            token: token.to_owned(),
        }),
    }
}

fn two_contexts(path: &Path) {
    let config = ConfigFile {
        current_context: Some("prod".to_owned()),
        contexts: vec![
            context("prod", "https://prod.example:3618", "pt_prod"),
            context("dev", "https://dev.example", "pt_dev"),
        ],
    };
    save(path, &config).unwrap();
}

#[test]
fn the_file_is_private_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conf").join("portico").join("config.yaml");
    two_contexts(&path);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("currentContext: prod"), "{text}");
    assert!(text.contains("kind: token"), "{text}");
    let config = load(&path).unwrap();
    assert_eq!(config.contexts.len(), 2);
    assert_eq!(
        config.contexts[1],
        context("dev", "https://dev.example", "pt_dev")
    );
    // No file yet: no contexts.
    assert_eq!(
        load(&dir.path().join("none.yaml")).unwrap(),
        ConfigFile::default()
    );
    std::fs::write(&path, "contexts: [[").unwrap();
    let err = load(&path).unwrap_err();
    assert_eq!(err.exit_code(), crate::commands::exit::USAGE, "{err}");
    assert!(err.to_string().contains("config.yaml"), "{err}");
}

#[test]
fn a_credential_kind_of_a_later_version_survives_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "currentContext: sso\ncontexts:\n- name: sso\n  server: https://gw.example\n  \
         credential:\n    kind: oidc\n    issuer: https://idp.example\n    refreshToken: r1\n",
    )
    .unwrap();
    let mut config = load(&path).unwrap();
    assert_eq!(
        config.contexts[0].credential.as_ref().unwrap().kind(),
        "oidc"
    );
    config.current_context = None;
    save(&path, &config).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("refreshToken: r1"), "{text}");
    // A command cannot use it, and says so.
    let err = resolve(&GatewayArgs {
        context: Some("sso".to_owned()),
        config: location(&path),
        ..GatewayArgs::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("`oidc` credential"), "{err}");
}

#[test]
fn flags_override_the_context_and_another_server_gets_none_of_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    two_contexts(&path);
    let args = |context: Option<&str>, server: Option<&str>, token: Option<&str>| GatewayArgs {
        context: context.map(str::to_owned),
        server: server.map(str::to_owned),
        token: token.map(str::to_owned),
        config: location(&path),
        ..GatewayArgs::default()
    };
    // The current context.
    let target = resolve(&args(None, None, None)).unwrap();
    assert_eq!(target.server, "https://prod.example:3618");
    assert_eq!(target.token.as_deref(), Some("pt_prod"));
    assert_eq!(target.ca_pem.as_deref(), Some("PEM of prod"));
    // A named one; a token flag wins over its token.
    let target = resolve(&args(Some("dev"), None, Some("pt_flag"))).unwrap();
    assert_eq!(target.server, "https://dev.example");
    assert_eq!(target.token.as_deref(), Some("pt_flag"));
    // The same server spelled differently is still the context's.
    let target = resolve(&args(None, Some("https://PROD.example:3618/"), None)).unwrap();
    assert_eq!(target.token.as_deref(), Some("pt_prod"));
    // Another server: no token, no CA from the context.
    let target = resolve(&args(None, Some("https://evil.example"), None)).unwrap();
    assert_eq!(target.server, "https://evil.example");
    assert!(target.token.is_none() && target.ca_pem.is_none());
    // An unknown context is a usage error naming the file.
    let err = resolve(&args(Some("nope"), None, None)).unwrap_err();
    assert_eq!(err.exit_code(), crate::commands::exit::USAGE);
    assert!(err.to_string().contains("no context `nope`"), "{err}");
    // The former PORTICO_URL still names the server.
    let legacy = GatewayArgs {
        legacy_url: Some("https://prod.example:3618".to_owned()),
        config: location(&path),
        ..GatewayArgs::default()
    };
    assert_eq!(resolve(&legacy).unwrap().token.as_deref(), Some("pt_prod"));
}

#[test]
fn without_any_context_the_default_server_and_no_token() {
    let target = resolve(&GatewayArgs::default()).unwrap();
    assert_eq!(target.server, DEFAULT_SERVER);
    assert!(target.token.is_none());
    let dir = tempfile::tempdir().unwrap();
    let home = ConfigLocation {
        home: Some(dir.path().to_path_buf()),
        ..ConfigLocation::default()
    };
    assert_eq!(
        home.path().unwrap(),
        dir.path().join(".config/portico/config.yaml")
    );
    let xdg = ConfigLocation {
        xdg_config_home: Some(dir.path().join("xdg")),
        ..home
    };
    assert_eq!(
        xdg.path().unwrap(),
        dir.path().join("xdg/portico/config.yaml")
    );
}

#[test]
fn context_names_come_from_the_server() {
    use crate::commands::session::name_for;
    assert_eq!(name_for("https://gw.example:3618"), "gw.example:3618");
    assert_eq!(name_for("https://gw.example/"), "gw.example");
    assert!(same_server("https://a:443", "https://A/"));
    assert!(!same_server("https://a", "http://a"));
}
