use super::ImageRef;

#[test]
fn references_without_a_registry_are_on_docker_hub() {
    let nginx = ImageRef::parse("nginx");
    assert_eq!(nginx.name(), "docker.io/library/nginx");
    assert_eq!(nginx.tag, None);
    assert!(!nginx.pinned());
    let app = ImageRef::parse("example/app:2.0");
    assert_eq!(app.name(), "docker.io/example/app");
    assert_eq!(app.tag.as_deref(), Some("2.0"));
    assert!(app.pinned());
    assert!(!ImageRef::parse("busybox:latest").pinned());
}

#[test]
fn a_registry_has_a_dot_a_port_or_is_localhost() {
    let r = ImageRef::parse("registry.example.com:5000/nginx:1.27.0");
    assert_eq!(r.registry, "registry.example.com:5000");
    assert_eq!(r.repository, "nginx");
    assert_eq!(r.tag.as_deref(), Some("1.27.0"));
    assert_eq!(ImageRef::parse("localhost/app").registry, "localhost");
    assert_eq!(
        ImageRef::parse("index.docker.io/library/nginx").registry,
        "docker.io"
    );
    // A port without a tag is not a tag.
    assert_eq!(ImageRef::parse("registry:5000/app").tag, None);
}

#[test]
fn digests_pin_an_image() {
    let r = ImageRef::parse("ghcr.io/org/app:1.0@sha256:abc");
    assert_eq!(r.digest.as_deref(), Some("sha256:abc"));
    assert_eq!(r.tag.as_deref(), Some("1.0"));
    assert!(r.pinned());
    assert!(ImageRef::parse("nginx@sha256:abc").pinned());
}

#[test]
fn allow_list_entries_match_whole_components() {
    let r = ImageRef::parse("registry.example.com/team/app:1");
    assert!(r.allowed_by("registry.example.com"));
    assert!(r.allowed_by("registry.example.com/team/"));
    assert!(!r.allowed_by("registry.example.com/te"));
    assert!(!r.allowed_by("registry.example"));
    assert!(ImageRef::parse("nginx").allowed_by("index.docker.io/library"));
    assert!(!ImageRef::parse("nginx").allowed_by("quay.io"));
}
