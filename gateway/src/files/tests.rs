use std::os::unix::fs::PermissionsExt;

use super::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_loose_data_folder_of_portico_files_is_tightened() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    for name in ["portico.db", "portico.db-wal", "secret.key", "tls.key"] {
        std::fs::write(dir.join(name), "x").unwrap();
        chmod(&dir.join(name), 0o644);
    }
    chmod(&dir, 0o755);
    private_dir(&dir, Some("portico.db")).unwrap();
    assert_eq!(mode(&dir), 0o700);
    for name in ["portico.db", "secret.key"] {
        tighten_file(&dir.join(name)).unwrap();
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
}

#[test]
fn a_shared_folder_keeps_its_mode() {
    // e.g. `sqlite:///tmp/portico.db` or the working directory: others' files live there.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("portico.db"), "x").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "someone else's").unwrap();
    chmod(dir.path(), 0o755);
    private_dir(dir.path(), Some("portico.db")).unwrap();
    assert_eq!(mode(dir.path()), 0o755);
}

#[test]
fn new_folders_and_files_are_private_and_existing_private_ones_unchanged() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a/b/data");
    private_dir(&dir, None).unwrap();
    assert_eq!(mode(&dir), 0o700);
    let file = dir.join("portico.db");
    private_file(&file).unwrap();
    assert_eq!(mode(&file), 0o600);
    chmod(&file, 0o400);
    tighten_file(&file).unwrap();
    assert_eq!(mode(&file), 0o400, "stricter than 0600 is left alone");
    tighten_file(&dir.join("missing")).unwrap();
}
