//! The data folder is 0700 and the database, its `-wal` and `-shm` files, the secret key and
//! the generated TLS key are 0600, whatever the umask: `portico serve` runs here under umask
//! 000, first on a fresh folder, then on one whose modes were loosened.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(120);
const PRIVATE_FILES: &[&str] = &[
    "portico.db",
    "portico.db-wal",
    "portico.db-shm",
    "secret.key",
    "tls.key",
];

/// A `portico serve` child, killed on drop.
struct Serving {
    child: Child,
    stderr: mpsc::Receiver<String>,
    log: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `portico serve` under `umask` on `data`, returning once it listens.
fn serve(data: &Path, umask: &str) -> Serving {
    let database = format!("sqlite://{}/portico.db", data.display());
    let plugins = data.with_extension("plugins");
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_portico"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database,
        ])
        .arg("--plugin-dir")
        .arg(&plugins)
        .args(["--admin-token", "file-modes-admin-token"])
        .args(["--log", "info", "--log-format", "json"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn portico");
    let stderr = child.stderr.take().expect("piped stderr");
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let mut serving = Serving {
        stderr: receive,
        child,
        log: String::new(),
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match serving.stderr.recv_timeout(left) {
            Ok(line) => {
                serving.log.push_str(&line);
                serving.log.push('\n');
                if line.contains("portico listening") {
                    return serving;
                }
            }
            Err(_) => panic!("portico did not start:\n{}", serving.log),
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn assert_private(data: &Path, log: &str) {
    assert_eq!(mode(data), 0o700, "data folder; log:\n{log}");
    // The compile cache (the built-in plugins are compiled into it at start).
    assert_eq!(
        mode(&data.join("plugin-cache")),
        0o700,
        "plugin-cache; log:\n{log}"
    );
    for name in PRIVATE_FILES {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}; log:\n{log}");
    }
}

#[test]
fn data_files_are_private_whatever_the_umask() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");

    // A fresh start under umask 000.
    let first = serve(&data, "000");
    assert_private(&data, &first.log);
    drop(first);

    // Loosened by hand (or left so by an older version): tightened at start, with warnings.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        data.join("plugin-cache"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    for name in PRIVATE_FILES {
        std::fs::set_permissions(data.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let second = serve(&data, "000");
    assert_private(&data, &second.log);
    assert!(
        second.log.contains("tightened the mode of the data folder"),
        "{}",
        second.log
    );
    for name in PRIVATE_FILES {
        let path = data.join(name).display().to_string();
        assert!(
            second
                .log
                .lines()
                .any(|l| l.contains("tightened the mode of a private file")
                    && l.contains(&format!("\"path\":\"{path}\""))),
            "no warning for {name}:\n{}",
            second.log
        );
    }
}
