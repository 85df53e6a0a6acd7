//! Running Python scripts with the official `kubernetes` client.
//!
//! [`PythonEnv::ensure`] makes a virtual environment at `<target>/e2e-venv` with the packages
//! in `tests/requirements.txt`, once: several test binaries run in parallel, so creation is
//! serialised with an exclusive lock on `<target>/e2e-venv.lock`, and a marker file holding a
//! hash of the requirements says the venv is complete (a changed file rebuilds it).
//! Scripts live in `tests/e2e/py/`. The interpreter that makes the venv is
//! `$PORTICO_E2E_PYTHON`, else `python3`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/e2e sits two levels below the workspace")
        .to_path_buf()
}

/// The cargo target folder (`$CARGO_TARGET_DIR` or `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Where the test scripts are.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("py")
}

/// What a finished script printed and how it exited.
#[derive(Clone, Debug)]
pub struct ScriptOutput {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl ScriptOutput {
    /// Fails with both streams in the message unless the exit code was 0.
    pub fn success(self) -> Result<Self> {
        if self.code != 0 {
            bail!(
                "python exited with {}\nstdout:\n{}\nstderr:\n{}",
                self.code,
                self.stdout,
                self.stderr
            );
        }
        Ok(self)
    }

    /// Standard output parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("script output is not JSON:\n{}", self.stdout))
    }
}

/// A ready virtual environment.
#[derive(Clone, Debug)]
pub struct PythonEnv {
    venv: PathBuf,
}

fn fnv(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn run(cmd: &mut std::process::Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn ensure_blocking() -> Result<PythonEnv> {
    let target = target_dir();
    std::fs::create_dir_all(&target).context("creating the target folder")?;
    let venv = target.join("e2e-venv");
    let requirements = workspace_root().join("tests").join("requirements.txt");
    let wanted = fnv(&std::fs::read(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?);
    let marker = venv.join(".portico-requirements");
    let ready = || std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == wanted);
    if ready() {
        return Ok(PythonEnv { venv });
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(target.join("e2e-venv.lock"))
        .context("opening the venv lock file")?;
    lock.lock().context("locking the venv lock file")?;
    // Another test binary may have finished it while we waited.
    if ready() {
        return Ok(PythonEnv { venv });
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).context("removing an incomplete venv")?;
    }
    let python = std::env::var_os("PORTICO_E2E_PYTHON").unwrap_or_else(|| "python3".into());
    run(std::process::Command::new(&python)
        .arg("-m")
        .arg("venv")
        .arg(&venv))?;
    run(std::process::Command::new(venv.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements))?;
    std::fs::write(&marker, &wanted).context("writing the venv marker")?;
    drop(lock);
    Ok(PythonEnv { venv })
}

impl PythonEnv {
    /// Makes sure the venv exists and has the requirements; cheap when it does.
    pub async fn ensure() -> Result<Self> {
        tokio::task::spawn_blocking(ensure_blocking)
            .await
            .context("venv task panicked")?
    }

    /// The venv's interpreter.
    pub fn python(&self) -> PathBuf {
        self.venv.join("bin").join("python")
    }

    /// Runs `tests/e2e/py/<script>` with `args` and extra environment variables (at most
    /// 120 s).
    pub async fn run_script(
        &self,
        script: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<ScriptOutput> {
        let path = scripts_dir().join(script);
        let mut cmd = tokio::process::Command::new(self.python());
        cmd.arg(&path)
            .args(args)
            .envs(envs.iter().copied())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", path.display()))?;
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .with_context(|| format!("{script} did not finish within 120 s"))??;
        Ok(ScriptOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}
