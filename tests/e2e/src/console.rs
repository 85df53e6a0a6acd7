//! A browser-like client of the console (`/ui`) for HTTP-level tests: keeps cookies, does not
//! follow redirects (tests look at them), and posts forms with the page's CSRF token.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode, header};

use crate::gateway::TestGateway;

/// One browser: its cookies and the CSRF token of the last page it read.
#[derive(Debug)]
pub struct Console {
    base: String,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
    /// The `_csrf` value of the last page read (forms post it back).
    pub csrf: Option<String>,
}

/// A console response, its body read.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
}

impl Page {
    /// `Location` of a redirect.
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// The flash message cookie set by this response, decoded (`ok:…` or `error:…`).
    pub fn flash(&self) -> Option<String> {
        use base64::Engine as _;
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("__Host-portico_flash="))
            .and_then(|v| v.split(';').next())
            .filter(|v| !v.is_empty())
            .and_then(|v| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(v)
                    .ok()
            })
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Panics unless the body contains `needle` (HTML-escaped text as the page shows it).
    #[track_caller]
    pub fn assert_contains(&self, needle: &str) -> &Self {
        assert!(
            self.body.contains(needle),
            "page ({}) lacks {needle:?}:\n{}",
            self.status,
            self.body
        );
        self
    }

    #[track_caller]
    pub fn assert_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.body.contains(needle),
            "page ({}) has {needle:?}:\n{}",
            self.status,
            self.body
        );
        self
    }
}

/// The value of the first `name="NAME" value="…"` input of `html` (as the console renders
/// hidden fields).
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let start = rest.find("value=\"")? + "value=\"".len();
    let end = rest[start..].find('"')?;
    Some(
        rest[start..start + end]
            .replace("&amp;", "&")
            .replace("&quot;", "\""),
    )
}

impl Console {
    /// A browser with no cookies for `gateway`.
    pub fn new(gateway: &TestGateway) -> Result<Self> {
        let mut client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = gateway.ca_pem() {
            client = client.add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes())?);
        }
        Ok(Self {
            base: gateway.url.clone(),
            client: client.build()?,
            cookies: BTreeMap::new(),
            csrf: None,
        })
    }

    /// Signs in with `token` through the login form; fails unless the console accepts it.
    pub async fn sign_in(gateway: &TestGateway, token: &str) -> Result<Self> {
        let mut console = Self::new(gateway)?;
        let page = console.try_sign_in(token).await?;
        if page.status != StatusCode::SEE_OTHER {
            bail!("sign-in refused ({}): {}", page.status, page.body);
        }
        Ok(console)
    }

    /// Posts the login form with `token`; returns the response (303 on success).
    pub async fn try_sign_in(&mut self, token: &str) -> Result<Page> {
        let login = self.get("/ui/login").await?;
        let csrf = input_value(&login.body, "_csrf").context("the login form has no _csrf")?;
        self.send(
            Method::POST,
            "/ui/login",
            &[("_csrf", csrf.as_str()), ("token", token), ("next", "/ui")],
        )
        .await
    }

    /// The cookie `name` as this browser holds it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Sets or replaces a cookie by hand (tests of forged or stale cookies).
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    /// GET `path`; remembers the page's CSRF token when it has one.
    pub async fn get(&mut self, path: &str) -> Result<Page> {
        let page = self.request(Method::GET, path, None, &[]).await?;
        if let Some(csrf) = input_value(&page.body, "_csrf") {
            self.csrf = Some(csrf);
        }
        Ok(page)
    }

    /// Posts a form with the session's CSRF token added (read a page first).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Result<Page> {
        let csrf = self
            .csrf
            .clone()
            .context("no CSRF token: get a page first")?;
        let mut all = vec![("_csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.send(Method::POST, path, &all).await
    }

    /// Posts exactly `fields` (no token added).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<Page> {
        let body = serde_urlencoded_pairs(fields);
        self.request(
            method,
            path,
            Some(("application/x-www-form-urlencoded", body.into_bytes())),
            &[],
        )
        .await
    }

    /// Any request with extra headers.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, &str)],
    ) -> Result<Page> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(header::COOKIE, cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some((content_type, body)) = body {
            request = request
                .header(header::CONTENT_TYPE, content_type)
                .body(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers.get_all(header::SET_COOKIE) {
            let set = set.to_str()?;
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let expired = set.contains("Max-Age=0");
                if value.is_empty() || expired {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let body = response.text().await?;
        Ok(Page {
            status,
            headers,
            body,
        })
    }
}

fn serde_urlencoded_pairs(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
