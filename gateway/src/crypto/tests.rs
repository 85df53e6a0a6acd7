use super::*;

#[test]
fn keys_parse_from_base64_and_hex_and_reject_the_rest() {
    let key = SecretKey::generate();
    assert_eq!(SecretKey::parse(&key.to_base64()).unwrap(), key);
    let hex_form = hex::encode(key.0);
    assert_eq!(SecretKey::parse(&hex_form).unwrap(), key);
    for bad in ["", "abc", &hex_form[..62], &STANDARD.encode([1u8; 31])] {
        let err = SecretKey::parse(bad).unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }
    assert!(!format!("{key:?}").contains(&key.to_base64()));
}

#[test]
fn sealed_values_round_trip_and_resist_the_wrong_key_or_row() {
    let key = SecretKey::generate();
    let sealed = key.seal(b"cluster-a", b"kubeconfig secrets");
    assert!(
        !sealed.windows(7).any(|w| w == b"secrets"),
        "ciphertext hides the plaintext"
    );
    assert_eq!(
        key.open(b"cluster-a", &sealed).unwrap(),
        b"kubeconfig secrets"
    );
    assert!(matches!(
        SecretKey::generate().open(b"cluster-a", &sealed),
        Err(OpenError::WrongKey)
    ));
    assert!(matches!(
        key.open(b"cluster-b", &sealed),
        Err(OpenError::WrongKey)
    ));
    let mut tampered = sealed.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(matches!(
        key.open(b"cluster-a", &tampered),
        Err(OpenError::WrongKey)
    ));
    assert!(matches!(
        key.open(b"cluster-a", b"short"),
        Err(OpenError::Format)
    ));
    assert_ne!(
        sealed,
        key.seal(b"cluster-a", b"kubeconfig secrets"),
        "fresh nonce each time"
    );
}

#[test]
fn key_file_is_created_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    let (first, created) = SecretKey::load_or_create(&path).unwrap();
    assert!(created);
    let (again, created) = SecretKey::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(first, again);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::write(&path, "garbage").unwrap();
    assert!(SecretKey::load_or_create(&path).is_err());
}

#[test]
fn tokens_are_random_and_hashed() {
    let (a, b) = (generate_token(), generate_token());
    assert_ne!(a, b);
    assert!(a.starts_with("pt_") && a.len() == 46, "{a}");
    assert_eq!(token_hash(&a), token_hash(&a));
    assert_ne!(token_hash(&a), token_hash(&b));
    assert_eq!(token_hash(&a).len(), 64);
}
