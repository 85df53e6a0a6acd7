//! A real headless Chromium for the console's browser tests, driven through `chromedriver`
//! (Debian's `chromium` and `chromium-driver`) over the W3C WebDriver protocol.
//!
//! The WebDriver client is the few calls below over `reqwest`, written here rather than taken
//! from `fantoccini`: its rustls feature turns on rustls' `aws-lc-rs` back end beside our `ring`
//! one, and in the workspace's unified build every kube client (the simulator's tests, the
//! gateway's lease client) then panics for want of a single default crypto provider. Its other
//! TLS option needs OpenSSL's headers. These tests need eleven plain HTTP+JSON calls.
//!
//! Missing browser: under `CI` the test fails (CI installs both packages in `.ci/run`);
//! elsewhere it is skipped with a loud message.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde_json::{Value, json};
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
        let client = Client::new(
            &format!("http://127.0.0.1:{port}"),
            json!({
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
        )
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
    pub async fn wait_for(&self, css: &str) -> Result<Element> {
        for _ in 0..200 {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                return Ok(element);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("no element `{css}` within 20 s")
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

/// How to find an element.
#[derive(Debug, Clone, Copy)]
pub enum Locator<'a> {
    Css(&'a str),
    XPath(&'a str),
    LinkText(&'a str),
}

/// One WebDriver session.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    session: String,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element {
    client: Client,
    id: String,
}

/// The key under which WebDriver returns element references.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Client {
    async fn new(driver: &str, chrome_options: Value) -> Result<Self> {
        let http = reqwest::Client::new();
        let body = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": chrome_options,
        }}});
        let value = call(
            &http,
            reqwest::Method::POST,
            &format!("{driver}/session"),
            Some(body),
        )
        .await?;
        let id = value["sessionId"].as_str().context("no sessionId")?;
        Ok(Self {
            http,
            session: format!("{driver}/session/{id}"),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        call(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await?;
        Ok(())
    }

    pub async fn current_url(&self) -> Result<reqwest::Url> {
        let value = self.call(reqwest::Method::GET, "/url", None).await?;
        Ok(value.as_str().context("url")?.parse()?)
    }

    pub async fn source(&self) -> Result<String> {
        let value = self.call(reqwest::Method::GET, "/source", None).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        let value = self.call(reqwest::Method::GET, "/screenshot", None).await?;
        Ok(base64::engine::general_purpose::STANDARD.decode(value.as_str().context("png")?)?)
    }

    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    pub async fn find(&self, locator: Locator<'_>) -> Result<Element> {
        let (using, value) = match locator {
            Locator::Css(css) => ("css selector", css),
            Locator::XPath(xpath) => ("xpath", xpath),
            Locator::LinkText(text) => ("link text", text),
        };
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": using, "value": value})),
            )
            .await?;
        let id = found[ELEMENT_KEY].as_str().context("element id")?;
        Ok(Element {
            client: self.clone(),
            id: id.to_owned(),
        })
    }

    pub async fn close(&self) -> Result<()> {
        self.call(reqwest::Method::DELETE, "", None).await?;
        Ok(())
    }
}

impl Element {
    pub async fn click(&self) -> Result<()> {
        let path = format!("/element/{}/click", self.id);
        self.client
            .call(reqwest::Method::POST, &path, Some(json!({})))
            .await?;
        Ok(())
    }

    pub async fn clear(&self) -> Result<()> {
        let path = format!("/element/{}/clear", self.id);
        self.client
            .call(reqwest::Method::POST, &path, Some(json!({})))
            .await?;
        Ok(())
    }

    pub async fn send_keys(&self, text: &str) -> Result<()> {
        let path = format!("/element/{}/value", self.id);
        self.client
            .call(reqwest::Method::POST, &path, Some(json!({"text": text})))
            .await?;
        Ok(())
    }
}

/// One WebDriver command: its `value`, or its error as an error.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value> {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let mut body: Value = response.json().await?;
    if !status.is_success() {
        bail!(
            "WebDriver {url}: {status}: {} {}",
            body["value"]["error"],
            body["value"]["message"]
        );
    }
    Ok(body["value"].take())
}
