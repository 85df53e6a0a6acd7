//! Running the real `kubectl` against a cluster (the simulator, or a gateway's proxy path).
//!
//! [`Kubectl`] writes a kubeconfig into a temporary folder and runs `kubectl` with
//! `KUBECONFIG` and `KUBECACHEDIR` pointing there, so tests never touch `~/.kube`.
//! [`KubectlWatch`] runs a long-lived `kubectl get -w` and hands its output out line by line.
//! The binary is `$KUBECTL` when set, else `kubectl` from `PATH`; [`Kubectl::v1_20_for_sim`]
//! runs kubectl 1.20 instead (SPDY-only streaming), installed on first use by
//! `tests/tools/install-kubectl-1.20` into `target/kubectl-1.20/kubectl`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// What a finished `kubectl` printed and how it exited.
#[derive(Clone, Debug)]
pub struct KubectlOutput {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl KubectlOutput {
    /// Fails with both streams in the message unless the exit code was 0.
    pub fn success(self) -> Result<Self> {
        if self.code != 0 {
            bail!(
                "kubectl exited with {}\nstdout:\n{}\nstderr:\n{}",
                self.code,
                self.stdout,
                self.stderr
            );
        }
        Ok(self)
    }
}

/// A kubeconfig in a temporary folder and a way to run `kubectl` with it.
#[derive(Debug)]
pub struct Kubectl {
    dir: TempDir,
    kubeconfig: PathBuf,
    bin: PathBuf,
}

/// The `kubectl` binary to run.
pub fn binary() -> PathBuf {
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// Runs `tests/tools/install-kubectl-1.20` once for all test binaries (a lock file keeps
/// concurrent tests from installing twice; the script keeps an installed binary).
fn install_v1_20() -> Result<()> {
    let target = crate::python::target_dir();
    std::fs::create_dir_all(&target)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(target.join("kubectl-1.20.lock"))?;
    lock.lock()?;
    let status = std::process::Command::new(
        crate::python::workspace_root().join("tests/tools/install-kubectl-1.20"),
    )
    .env("CARGO_TARGET_DIR", &target)
    .stdout(Stdio::null())
    .status()?;
    anyhow::ensure!(status.success(), "install-kubectl-1.20 failed: {status}");
    Ok(())
}

/// Where `tests/tools/install-kubectl-1.20` installs kubectl 1.20.
pub fn v1_20_binary() -> PathBuf {
    crate::python::target_dir().join("kubectl-1.20/kubectl")
}

impl Kubectl {
    /// Writes `kubeconfig` (YAML) to a fresh temporary folder.
    pub fn new(kubeconfig: &str) -> Result<Self> {
        let dir = tempfile::tempdir().context("creating a temporary folder for kubectl")?;
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, kubeconfig).context("writing the kubeconfig")?;
        Ok(Self {
            dir,
            kubeconfig: path,
            bin: binary(),
        })
    }

    /// Runs this binary instead.
    pub fn with_binary(mut self, bin: impl Into<PathBuf>) -> Self {
        self.bin = bin.into();
        self
    }

    /// The binary this runs.
    pub fn binary(&self) -> &Path {
        &self.bin
    }

    /// kubectl 1.20 (exec, attach and port-forward over SPDY only) set up for a simulator.
    /// Installed on first use by `tests/tools/install-kubectl-1.20` (from Debian's package:
    /// needs apt). `None`, after a loud message, when that fails — unless `CI` is set: then a
    /// missing kubectl 1.20 fails the test, so CI can never pass by skipping.
    pub fn v1_20_for_sim(sim: &kube_sim::KubeSim, test: &str) -> Result<Option<Self>> {
        let bin = v1_20_binary();
        let installed = bin.is_file() || install_v1_20().is_ok_and(|()| bin.is_file());
        if !installed {
            if std::env::var_os("CI").is_some() {
                bail!(
                    "{test}: {} is missing and CI is set: tests/tools/install-kubectl-1.20 \
                     did not install it",
                    bin.display()
                );
            }
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !! SKIPPED {test} with kubectl 1.20: {} is missing and\n\
                 !! tests/tools/install-kubectl-1.20 could not install it (it needs apt).\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
                bin.display()
            );
            return Ok(None);
        }
        Ok(Some(Self::for_sim(sim)?.with_binary(bin)))
    }

    /// A kubectl set up for a simulator (its URL, CA and token).
    pub fn for_sim(sim: &kube_sim::KubeSim) -> Result<Self> {
        Self::new(&sim.kubeconfig())
    }

    /// Path of the kubeconfig file.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The folder holding the kubeconfig; tests may put manifests here.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A `kubectl` command with the environment set; add arguments and run it yourself.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .env("HOME", self.dir.path())
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `kubectl ARGS` to completion (at most 60 s).
    pub async fn run(&self, args: &[&str]) -> Result<KubectlOutput> {
        self.run_with_stdin(args, None).await
    }

    /// Runs `kubectl ARGS`, feeding `stdin` when given and closing it afterwards.
    pub async fn run_with_stdin(
        &self,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<KubectlOutput> {
        let mut cmd = self.command(args);
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().context("kubectl stdin")?;
            pipe.write_all(input.as_bytes()).await?;
            drop(pipe);
        }
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .with_context(|| format!("kubectl {args:?} did not finish within 60 s"))??;
        Ok(KubectlOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs `kubectl ARGS` feeding `input` on stdin while reading its output (so large inputs
    /// and outputs cannot block each other); stdout is returned as bytes.
    pub async fn run_with_input(
        &self,
        args: &[&str],
        input: Vec<u8>,
    ) -> Result<(i32, Vec<u8>, String)> {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let mut pipe = child.stdin.take().context("kubectl stdin")?;
        let writer = tokio::spawn(async move {
            let r = pipe.write_all(&input).await;
            drop(pipe);
            r
        });
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .with_context(|| format!("kubectl {args:?} did not finish within 120 s"))??;
        // A failed write is reported through kubectl's exit and output.
        let _ = writer.await;
        Ok((
            out.status.code().unwrap_or(-1),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// Starts kubectl with stdin, stdout and stderr piped (killed when dropped); the test
    /// drives it.
    pub fn spawn_piped(&self, args: &[&str]) -> Result<Child> {
        self.command(args)
            .stdin(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))
    }

    /// Starts a long-running kubectl (for example `get pods -w`) whose output is read line by
    /// line. It is killed when the returned value is dropped.
    pub fn spawn(&self, args: &[&str]) -> Result<KubectlWatch> {
        let mut child = self
            .command(args)
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let stdout = child.stdout.take().context("kubectl stdout")?;
        Ok(KubectlWatch {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }
}

/// A running kubectl whose standard output is read a line at a time.
#[derive(Debug)]
pub struct KubectlWatch {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl KubectlWatch {
    /// The next line, `None` when kubectl closed its output; fails after `timeout`.
    pub async fn next_line(&mut self, timeout: Duration) -> Result<Option<String>> {
        tokio::time::timeout(timeout, self.lines.next_line())
            .await
            .context("no line from kubectl in time")?
            .context("reading kubectl output")
    }

    /// Reads lines until one satisfies `pred` and returns it; fails after `timeout` or when
    /// the output ends first.
    pub async fn wait_for_line(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_line(left).await {
                Ok(Some(line)) if pred(&line) => return Ok(line),
                Ok(Some(line)) => seen.push(line),
                Ok(None) => bail!("kubectl output ended; saw {seen:?}"),
                Err(e) => return Err(e.context(format!("saw {seen:?}"))),
            }
        }
    }

    /// Waits for kubectl to exit by itself (at most `timeout`) and returns its exit code.
    pub async fn wait(&mut self, timeout: Duration) -> Result<i32> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .context("kubectl did not exit in time")??;
        Ok(status.code().unwrap_or(-1))
    }

    /// Kills the process now.
    pub async fn kill(&mut self) -> Result<()> {
        self.child.kill().await.context("killing kubectl")
    }
}
