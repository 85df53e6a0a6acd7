//! A throwaway PostgreSQL cluster: `initdb` into a temporary folder, `pg_ctl start` on a free
//! loopback port, stopped and removed on drop. Fault tests stop and start it again on the same
//! port ([`TestPostgres::stop`], [`TestPostgres::start`]).
//!
//! The binaries come from `PG_BIN`, else `PATH`, else the newest `/usr/lib/postgresql/*/bin`.
//! PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (or
//! `nobody`) through `runuser`. Without binaries, tests skip loudly, unless `CI` is set: then a
//! missing PostgreSQL is a failure, so CI can never pass by skipping.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

/// A running PostgreSQL server; stopped (immediate mode) and deleted on drop.
#[derive(Debug)]
pub struct TestPostgres {
    dir: TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
    /// Whether the server runs (false between [`TestPostgres::stop`] and
    /// [`TestPostgres::start`]).
    running: AtomicBool,
}

const SUPERUSER: &str = "portico";

impl TestPostgres {
    /// Starts a server, or returns `None` (after a loud message) when this machine has no
    /// PostgreSQL binaries and `CI` is not set. Panics when start-up fails.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        match find_bin_dir() {
            Some(bin) => Some(Self::start_with(&bin).expect("start a throwaway PostgreSQL")),
            None if std::env::var_os("CI").is_some() => panic!(
                "{test}: no PostgreSQL binaries (initdb, pg_ctl) found in PG_BIN, PATH or \
                 /usr/lib/postgresql/*/bin, and CI is set: PostgreSQL tests must run in CI"
            ),
            None => {
                eprintln!(
                    "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                     !! SKIPPED {test}: no PostgreSQL binaries (initdb, pg_ctl) on this machine.\n\
                     !! Install PostgreSQL or set PG_BIN to run the PostgreSQL tests.\n\
                     !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
                );
                None
            }
        }
    }

    fn start_with(bin: &Path) -> Result<Self> {
        let run_as = if running_as_root() {
            Some(unprivileged_user()?)
        } else {
            None
        };
        let dir = tempfile::Builder::new().prefix("portico-pg-").tempdir()?;
        if let Some(user) = &run_as {
            chown_to(dir.path(), user)?;
        }
        let data = dir.path().join("data");
        let mut pg = Self {
            dir,
            bin: bin.to_owned(),
            run_as,
            port: 0,
            running: AtomicBool::new(false),
        };
        pg.run(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        // A free port can be taken between our probe and the server's bind: retry a few times.
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            match pg.pg_ctl_start(port) {
                Ok(()) => {
                    pg.port = port;
                    pg.running.store(true, Ordering::SeqCst);
                    return Ok(pg);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// `pg_ctl start` on `port`, waiting until the server accepts connections; the server log
    /// is the error's context on failure.
    fn pg_ctl_start(&self, port: u16) -> Result<()> {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=200"
        );
        self.run(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-o",
                &options,
            ],
        )
        .map(|_| ())
        .map_err(|e| e.context(std::fs::read_to_string(&log).unwrap_or_default()))
    }

    /// Stops the server (`pg_ctl stop -m fast`: open sessions are terminated, as in a restart
    /// of a real database) and waits until it is down. Clients then get connection refused.
    pub fn stop(&self) -> Result<()> {
        self.stop_with("fast")
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`: no shutdown checkpoint,
    /// sessions cut).
    pub fn kill(&self) -> Result<()> {
        self.stop_with("immediate")
    }

    fn stop_with(&self, mode: &str) -> Result<()> {
        let data = self.dir.path().join("data");
        self.run(
            "pg_ctl",
            &["stop", "-w", "-m", mode, "-D", path_str(&data)?],
        )?;
        self.running.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Starts a stopped server again on the same port, with the same data; returns once it
    /// accepts connections.
    pub fn start(&self) -> Result<()> {
        self.pg_ctl_start(self.port)?;
        self.running.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// [`TestPostgres::stop`], then [`TestPostgres::start`].
    pub fn restart(&self) -> Result<()> {
        self.stop()?;
        self.start()
    }

    /// Whether the server runs.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of database `name` (see [`TestPostgres::create_database`]).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let port = self.port.to_string();
        self.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, name],
        )?;
        Ok(self.url(name))
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        let exe = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        command.args(args).current_dir(self.dir.path());
        let output = command
            .output()
            .with_context(|| format!("run {}", exe.display()))?;
        if !output.status.success() {
            bail!(
                "{program} {args:?} failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(output)
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if self.port == 0 || !self.is_running() {
            return;
        }
        let data = self.dir.path().join("data");
        if let Some(data) = data.to_str()
            && let Err(e) = self.run("pg_ctl", &["stop", "-w", "-m", "immediate", "-D", data])
        {
            eprintln!("stopping the throwaway PostgreSQL failed: {e:#}");
        }
    }
}

fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN").map(PathBuf::from) {
        return has_tools(&dir).then_some(dir);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    // Newest major version first (directory names are numbers).
    candidates.sort_by_key(|p| {
        let version = p
            .parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok());
        std::cmp::Reverse(version)
    });
    // Debian's PATH entries are symlinks into that folder; the folder also has createdb.
    let from_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("initdb"))
            .find(|initdb| initdb.is_file())
            .and_then(|initdb| std::fs::canonicalize(initdb).ok())
            .and_then(|real| real.parent().map(Path::to_path_buf))
    });
    from_path
        .into_iter()
        .chain(candidates)
        .find(|d| has_tools(d))
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn unprivileged_user() -> Result<String> {
    for user in ["postgres", "nobody"] {
        let known = Command::new("id")
            .arg("-u")
            .arg(user)
            .output()
            .is_ok_and(|o| o.status.success());
        if known {
            return Ok(user.to_owned());
        }
    }
    bail!("running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")
}

fn chown_to(path: &Path, user: &str) -> Result<()> {
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id").arg(flag).arg(user).output()?;
        Ok(String::from_utf8(out.stdout)?.trim().parse()?)
    };
    std::os::unix::fs::chown(path, Some(id("-u")?), Some(id("-g")?))
        .with_context(|| format!("chown {} to {user}", path.display()))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str().context("non-UTF-8 temporary path")
}
