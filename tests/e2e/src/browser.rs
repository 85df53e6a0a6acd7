//! A real headless Chromium for the console's browser tests, driven through `chromedriver`
//! (Debian's `chromium` and `chromium-driver`) with the WebDriver client `fantoccini`.
//!
//! Missing browser: under `CI` the test fails (CI installs both packages in `.ci/run`);
//! elsewhere it is skipped with a loud message.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running chromedriver and one browser session.
#[derive(Debug)]
pub struct Browser {
    pub client: Client,
    _driver: Child,
    screenshots: PathBuf,
}

/// The Chromium binary chromedriver should start (the Debian wrapper script, or the binary).
fn chromium_binary() -> Option<PathBuf> {
    ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// `chromedriver` on the PATH, or Debian's location.
fn chromedriver() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromedriver"))
            .find(|p| p.exists())
    });
    on_path.or_else(|| {
        let debian = PathBuf::from("/usr/lib/chromium/chromedriver");
        debian.exists().then_some(debian)
    })
}

impl Browser {
    /// Starts chromedriver (port 0) and a headless Chromium; `None` (skip) when either is
    /// missing outside CI. Screenshots go to `target/console-screenshots/<test>/`.
    pub async fn start_or_skip(test: &str) -> Option<Self> {
        let (Some(driver), Some(chromium)) = (chromedriver(), chromium_binary()) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: chromium and chromedriver are required under CI \
                 (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "\n*** SKIPPED {test}: no chromium/chromedriver (apt-get install chromium \
                 chromium-driver) ***\n"
            );
            return None;
        };
        Some(
            Self::start(&driver, &chromium, test)
                .await
                .expect("start chromedriver and chromium"),
        )
    }

    async fn start(driver: &Path, chromium: &Path, test: &str) -> Result<Self> {
        // The WebDriver client's TLS stack sees more than one rustls back end in this build:
        // name the process's one (an error only says it is already set).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut child = Command::new(driver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", driver.display()))?;
        let stdout = child.stdout.take().context("chromedriver stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return Ok::<_, anyhow::Error>(rest.trim_end_matches('.').parse::<u16>()?);
                }
            }
            bail!("chromedriver exited without saying its port")
        })
        .await
        .context("chromedriver did not start in 20 s")??;
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    // The test gateway's certificate is from its own throwaway CA.
                    "--ignore-certificate-errors",
                    "--window-size=1360,900",
                    "--lang=en-US",
                ],
            }),
        );
        let client = ClientBuilder::rustls()?
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("open a browser session")?;
        let screenshots = crate::python::target_dir()
            .join("console-screenshots")
            .join(test);
        std::fs::create_dir_all(&screenshots)?;
        Ok(Self {
            client,
            _driver: child,
            screenshots,
        })
    }

    /// Saves a PNG of the viewport as `<name>.png` (a test artifact) and returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Waits (bounded) until an element matching `css` shows up, and returns it.
    pub async fn wait_for(&self, css: &str) -> Result<fantoccini::elements::Element> {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no element `{css}` within 20 s"))
    }

    /// Waits (bounded) until the page's text contains `text`.
    pub async fn wait_for_text(&self, text: &str) -> Result<()> {
        for _ in 0..200 {
            let body = self.client.source().await?;
            if body.contains(text) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the page never showed {text:?}")
    }

    /// Fills the field named `name` (clears it first).
    pub async fn fill(&self, name: &str, value: &str) -> Result<()> {
        let field = self
            .client
            .find(Locator::Css(&format!("[name=\"{name}\"]")))
            .await?;
        field.clear().await?;
        field.send_keys(value).await?;
        Ok(())
    }

    /// Ends the browser session.
    pub async fn close(self) -> Result<()> {
        self.client.close().await?;
        Ok(())
    }
}
