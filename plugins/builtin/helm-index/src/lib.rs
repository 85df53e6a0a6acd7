//! Synchronises a classic HTTP Helm repository: `GET <url>/index.yaml`, conditional on the
//! ETag of the last sync, with basic or bearer authentication.

use std::collections::BTreeMap;

use portico_plugin_sdk::http::Request;
use portico_plugin_sdk::prelude::*;

/// The parts of `index.yaml` Portico keeps.
#[derive(serde::Deserialize)]
struct Index {
    #[serde(default)]
    entries: BTreeMap<String, Vec<ChartVersion>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChartVersion {
    name: Option<String>,
    version: String,
    app_version: Option<String>,
    description: Option<String>,
    digest: Option<String>,
    #[serde(default)]
    urls: Vec<String>,
    created: Option<String>,
    #[serde(default)]
    deprecated: bool,
    icon: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
}

struct HelmIndex;

impl RepoSync for HelmIndex {
    fn sync(repository: Repository) -> Result<SyncOutcome, Error> {
        let base = repository.url.trim_end_matches('/');
        let mut request = Request::get(format!("{base}/index.yaml"))
            .header("accept", "application/x-yaml, text/yaml, */*");
        if let Some(etag) = &repository.etag {
            request = request.header("if-none-match", etag.as_str());
        }
        request = match &repository.auth {
            Some(RepositoryAuth::Basic(auth)) => request.basic(&auth.username, &auth.password),
            Some(RepositoryAuth::Bearer(token)) => request.bearer(token),
            None => request,
        };
        let response = request.send()?;
        match response.status {
            304 => {
                log::debug(format!("{}: index unchanged", repository.name));
                return Ok(SyncOutcome::Unchanged);
            }
            200..=299 => {}
            401 | 403 => {
                return Err(Error::new(
                    ErrorKind::Denied,
                    format!(
                        "{base}/index.yaml: HTTP {} (check the repository's credentials)",
                        response.status
                    ),
                ));
            }
            404 => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("{base}/index.yaml: HTTP 404 (is this a Helm repository?)"),
                ));
            }
            status => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("{base}/index.yaml: HTTP {status}"),
                ));
            }
        }
        let index: Index = serde_yaml::from_slice(&response.body)
            .map_err(|e| Error::invalid(format!("{base}/index.yaml is not a Helm index: {e}")))?;
        let mut charts = Vec::new();
        for (name, versions) in index.entries {
            for v in versions {
                charts.push(Chart {
                    name: v.name.unwrap_or_else(|| name.clone()),
                    version: v.version,
                    app_version: v.app_version,
                    description: v.description,
                    digest: v.digest,
                    urls: v.urls.iter().map(|u| absolute(base, u)).collect(),
                    created: v.created,
                    deprecated: v.deprecated,
                    icon: v.icon,
                    keywords: v.keywords,
                });
            }
        }
        log::info(format!(
            "{}: {} chart versions",
            repository.name,
            charts.len()
        ));
        Ok(SyncOutcome::Updated(ChartIndex {
            charts,
            etag: response.header("etag").map(str::to_owned),
        }))
    }
}

portico_plugin_sdk::export_repo_sync!(HelmIndex);

/// Chart URLs in an index may be relative to the repository.
fn absolute(base: &str, url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("{base}/{}", url.trim_start_matches('/'))
    }
}
