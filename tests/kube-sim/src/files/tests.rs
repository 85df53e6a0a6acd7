use super::*;

#[test]
fn normalizes_paths() {
    assert_eq!(normalize("tmp/a/../b/./c/"), "/tmp/b/c");
    assert_eq!(normalize("/../.."), "/");
    assert_eq!(normalize(""), "/");
}

#[test]
fn tar_round_trips_a_directory_with_gnu_names() {
    let mut t = Tree::new("p");
    t.mkdir("/tmp/d/sub", true).unwrap();
    t.write("/tmp/d/a.txt", Bytes::from_static(b"hello"), 0o600)
        .unwrap();
    t.write("/tmp/d/sub/b.bin", Bytes::from(vec![9u8; 70_000]), 0o644)
        .unwrap();
    let (archive, errors) = t.tar(&["/tmp/d".into(), "/nope".into()]);
    assert_eq!(errors, vec![Error::NotFound("/nope".into())]);
    let names: Vec<String> = tar::Archive::new(&archive[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["tmp/d/", "tmp/d/a.txt", "tmp/d/sub/", "tmp/d/sub/b.bin"]
    );

    let mut other = Tree::new("q");
    assert_eq!(
        other.untar(&archive, "/nope"),
        Err(Error::NotFound("/nope".into()))
    );
    other.untar(&archive, "/root").unwrap();
    assert_eq!(other.read("/root/tmp/d/a.txt").unwrap(), "hello");
    assert_eq!(other.read("/root/tmp/d/sub/b.bin").unwrap().len(), 70_000);
    assert!(other.is_dir("/root/tmp/d/sub"));
    assert_eq!(other.list("/root/tmp/d").unwrap(), ["a.txt", "sub"]);
}

#[test]
fn directory_operations_follow_coreutils() {
    let mut t = Tree::new("p");
    assert_eq!(t.mkdir("/a/b", false), Err(Error::NotFound("/a/b".into())));
    t.mkdir("/a/b", true).unwrap();
    assert_eq!(t.mkdir("/a", false), Err(Error::Exists("/a".into())));
    assert_eq!(t.remove("/a", false), Err(Error::IsDir("/a".into())));
    t.remove("/a", true).unwrap();
    assert!(t.get("/a/b").is_none());
    assert_eq!(t.read("/etc/hostname").unwrap(), "p\n");
    assert_eq!(t.read("/etc"), Err(Error::IsDir("/etc".into())));
}
