//! Container image references, read the way the container runtimes read them
//! (github.com/distribution/reference, `ParseNormalizedNamed`): the first path component is a
//! registry when it holds a `.` or a `:` or is `localhost`; otherwise the image is on Docker
//! Hub (`docker.io`), and a one-component name lives under `library/`.

/// Docker Hub, where references without a registry point.
const DOCKER_HUB: &str = "docker.io";

/// The parts of a reference the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `docker.io`, `registry.example.com:5000`.
    pub registry: String,
    /// The repository below the registry: `library/nginx`, `team/app`.
    pub repository: String,
    /// The tag, if any (`1.27`).
    pub tag: Option<String>,
    /// The digest, if any (`sha256:…`).
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(image: &str) -> Self {
        let (rest, digest) = match image.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.to_owned())),
            None => (image, None),
        };
        // The tag follows the last ':' after the last '/' (a registry may carry a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_owned()),
            ),
            None => (rest, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), path.to_owned())
            }
            Some(_) => (DOCKER_HUB.to_owned(), name.to_owned()),
            None => (DOCKER_HUB.to_owned(), format!("library/{name}")),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
            _ => registry,
        };
        Self {
            registry,
            repository,
            tag,
            digest,
        }
    }

    /// `registry/repository`, e.g. `docker.io/library/nginx`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// A digest, or a tag other than `latest`.
    pub fn pinned(&self) -> bool {
        self.digest.is_some()
            || self
                .tag
                .as_deref()
                .is_some_and(|t| !t.is_empty() && t != "latest")
    }

    /// Whether an `allowed-registries` entry admits this image: the entry is a registry
    /// (`registry.example.com`) or a repository prefix (`registry.example.com/team`), compared
    /// on whole path components.
    pub fn allowed_by(&self, entry: &str) -> bool {
        let entry = Self::parse_prefix(entry);
        let name = self.name();
        name == entry || name.starts_with(&format!("{entry}/"))
    }

    /// An allow-list entry in normalised form: Docker Hub's aliases become `docker.io`.
    fn parse_prefix(entry: &str) -> String {
        let entry = entry.trim().trim_end_matches('/');
        let (first, rest) = match entry.split_once('/') {
            Some((first, rest)) => (first, Some(rest)),
            None => (entry, None),
        };
        let first = match first {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB,
            other => other,
        };
        match rest {
            Some(rest) => format!("{first}/{rest}"),
            None => first.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
