//! Write Portico plugins — WebAssembly components built for `wasm32-wasip2` against the WIT
//! package `portico:plugin@0.1.0` in `wit/` — in a few lines.
//!
//! ```ignore
//! use portico_plugin_sdk::k8s::api::core::v1::Pod;
//! use portico_plugin_sdk::prelude::*;
//!
//! struct PendingPods;
//!
//! impl Inspector for PendingPods {
//!     fn inspect(_cluster: Cluster) -> Result<Vec<Finding>, Error> {
//!         let pods: Vec<Pod> = kube::list(&ListParams::default())?;
//!         Ok(pods
//!             .iter()
//!             .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
//!             .map(|p| Finding::fail("pod-pending", Severity::Medium, "pod is Pending").on(p))
//!             .collect())
//!     }
//! }
//!
//! portico_plugin_sdk::export_inspector!(PendingPods);
//! ```
//!
//! What is here:
//! - [`Inspector`], [`RepoSync`], [`LifecycleHook`]: the three worlds as traits, and
//!   [`export_inspector!`], [`export_repo_sync!`], [`export_lifecycle_hook!`] to export a type
//!   implementing one. A plugin exports exactly one world.
//! - [`kube`]: typed, read-only access to the cluster with [`k8s`] (k8s-openapi) types.
//! - [`Finding`] builder methods, [`config::get`] to decode the plugin's configuration,
//!   [`log`] and [`http`] helpers.
//! - [`ConfigCheck`]: refuse a configuration before the gateway stores it, exported with
//!   `export_inspector!(T, config_check)` (and the other worlds' macros likewise).
//!
//! Every host call can fail with an [`Error`] the plugin sees (`denied` when the manifest did
//! not declare the capability); plugins usually pass it on with `?`.
//!
//! The crate must be a dependency named `portico_plugin_sdk` (the export macros refer to it by
//! that name).

use std::fmt;

pub use k8s_openapi as k8s;
pub use serde_json::{Value, json};

/// Bindings generated from the `imports` world: every import of every world.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "imports",
        generate_unused_types: true,
        additional_derives: [PartialEq],
    });
}

pub mod config;
pub mod http;
pub mod kube;
pub mod log;

pub use bindings::portico::plugin::types::{
    BasicAuth, Chart, ChartIndex, Cluster, Error, ErrorKind, Finding, ObjectRef, Repository,
    RepositoryAuth, Severity, SyncOutcome,
};
pub use kube::ListParams;

/// The WIT package this SDK targets.
pub const WIT_PACKAGE: &str = "portico:plugin@0.1.0";

/// Everything a plugin usually needs.
pub mod prelude {
    pub use crate::{
        Chart, ChartIndex, Cluster, ConfigCheck, ConfigIssue, Error, ErrorKind, Finding, Inspector,
        LifecycleHook, ListParams, ObjectRef, RepoSync, Repository, RepositoryAuth, Severity,
        SyncOutcome, config, http, json, kube, log,
    };
}

/// World `inspector`: read a cluster, report findings.
pub trait Inspector {
    /// Inspects `cluster`. An `Err` fails the run with the error's message.
    fn inspect(cluster: Cluster) -> Result<Vec<Finding>, Error>;
}

/// World `repo-sync`: synchronise one Helm chart repository.
pub trait RepoSync {
    /// Reads `repository`'s index; `Unchanged` when a conditional GET says it did not change.
    fn sync(repository: Repository) -> Result<SyncOutcome, Error>;
}

/// World `lifecycle-hook`: react to the gateway connecting to or disconnecting from a cluster.
pub trait LifecycleHook {
    /// Called after the gateway connected to `cluster`.
    fn on_connect(cluster: Cluster) -> Result<(), Error> {
        let _ = cluster;
        Ok(())
    }

    /// Called after the gateway disconnected from `cluster`.
    fn on_disconnect(cluster: Cluster) -> Result<(), Error> {
        let _ = cluster;
        Ok(())
    }
}

include!(concat!(env!("OUT_DIR"), "/export_macros.rs"));

/// Exports a type implementing [`Inspector`] as the component's `inspector` world.
///
/// `export_inspector!(T, config_check)` also exports `config-check`, with `T` implementing
/// [`ConfigCheck`]: the gateway then refuses a configuration `T` finds fault with.
#[macro_export]
macro_rules! export_inspector {
    ($plugin:ty) => {
        $crate::export_inspector!(@world $plugin, __portico_bindings_inspector,);
    };
    ($plugin:ty, config_check) => {
        $crate::export_inspector!(
            @world $plugin,
            __portico_bindings_inspector_config_check,
            $crate::__portico_config_check_export!();
        );
    };
    (@world $plugin:ty, $bindings:ident, $($extra:tt)*) => {
        #[doc(hidden)]
        type __PorticoPlugin = $plugin;

        #[doc(hidden)]
        #[allow(clippy::all)]
        mod __portico_export {
            $crate::$bindings!();

            struct Export;

            impl Guest for Export {
                fn inspect(
                    target: $crate::Cluster,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::Finding>, $crate::Error>
                {
                    <super::__PorticoPlugin as $crate::Inspector>::inspect(target)
                }
            }

            $($extra)*

            export!(Export);
        }
    };
}

/// Exports a type implementing [`RepoSync`] as the component's `repo-sync` world
/// (`export_repo_sync!(T, config_check)`: with `config-check`, see [`export_inspector!`]).
#[macro_export]
macro_rules! export_repo_sync {
    ($plugin:ty) => {
        $crate::export_repo_sync!(@world $plugin, __portico_bindings_repo_sync,);
    };
    ($plugin:ty, config_check) => {
        $crate::export_repo_sync!(
            @world $plugin,
            __portico_bindings_repo_sync_config_check,
            $crate::__portico_config_check_export!();
        );
    };
    (@world $plugin:ty, $bindings:ident, $($extra:tt)*) => {
        #[doc(hidden)]
        type __PorticoPlugin = $plugin;

        #[doc(hidden)]
        #[allow(clippy::all)]
        mod __portico_export {
            $crate::$bindings!();

            struct Export;

            impl Guest for Export {
                fn sync(
                    repository: $crate::Repository,
                ) -> ::std::result::Result<$crate::SyncOutcome, $crate::Error> {
                    <super::__PorticoPlugin as $crate::RepoSync>::sync(repository)
                }
            }

            $($extra)*

            export!(Export);
        }
    };
}

/// Exports a type implementing [`LifecycleHook`] as the component's `lifecycle-hook` world
/// (`export_lifecycle_hook!(T, config_check)`: with `config-check`, see
/// [`export_inspector!`]).
#[macro_export]
macro_rules! export_lifecycle_hook {
    ($plugin:ty) => {
        $crate::export_lifecycle_hook!(@world $plugin, __portico_bindings_lifecycle_hook,);
    };
    ($plugin:ty, config_check) => {
        $crate::export_lifecycle_hook!(
            @world $plugin,
            __portico_bindings_lifecycle_hook_config_check,
            $crate::__portico_config_check_export!();
        );
    };
    (@world $plugin:ty, $bindings:ident, $($extra:tt)*) => {
        #[doc(hidden)]
        type __PorticoPlugin = $plugin;

        #[doc(hidden)]
        #[allow(clippy::all)]
        mod __portico_export {
            $crate::$bindings!();

            struct Export;

            impl Guest for Export {
                fn on_connect(target: $crate::Cluster) -> ::std::result::Result<(), $crate::Error> {
                    <super::__PorticoPlugin as $crate::LifecycleHook>::on_connect(target)
                }

                fn on_disconnect(
                    target: $crate::Cluster,
                ) -> ::std::result::Result<(), $crate::Error> {
                    <super::__PorticoPlugin as $crate::LifecycleHook>::on_disconnect(target)
                }
            }

            $($extra)*

            export!(Export);
        }
    };
}

/// The `config-check` export of an `export_*!(T, config_check)` expansion: the configuration
/// parsed as JSON (text that is not JSON is one issue), then [`ConfigCheck::check_config`].
#[doc(hidden)]
#[macro_export]
macro_rules! __portico_config_check_export {
    () => {
        impl exports::portico::plugin::config_check::Guest for Export {
            fn validate_config(
                config: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::vec::Vec<exports::portico::plugin::config_check::ConfigIssue>,
                $crate::Error,
            > {
                let issues = $crate::config::run_check::<super::__PorticoPlugin>(&config)?;
                Ok(issues
                    .into_iter()
                    .map(
                        |issue| exports::portico::plugin::config_check::ConfigIssue {
                            path: issue.path,
                            message: issue.message,
                            line: issue.line,
                            column: issue.column,
                        },
                    )
                    .collect())
            }
        }
    };
}

/// The optional `config-check` export: refuse a configuration before the gateway stores it.
/// Export it with `export_inspector!(T, config_check)` (or the other worlds' macros).
pub trait ConfigCheck {
    /// The problems of `config` (empty: it is fine). An `Err` means the check itself failed;
    /// the gateway does not store the configuration then either.
    fn check_config(config: Value) -> Result<Vec<ConfigIssue>, Error>;
}

/// One reason to refuse a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Where in the configuration, such as `rules[2].expression`; empty for the whole document.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// 1-based line within the value at `path` (an expression, a YAML document), when known.
    pub line: Option<u32>,
    /// 1-based column within that line, when known.
    pub column: Option<u32>,
}

impl ConfigIssue {
    /// An issue at `path`, without a position.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            line: None,
            column: None,
        }
    }

    /// At `line`:`column` (1-based) of the value at its path.
    pub fn at(mut self, line: u32, column: u32) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }
}

/// Re-exports the export macros rely on; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// An [`ErrorKind::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// An [`ErrorKind::Invalid`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Denied => "denied",
            Self::NotFound => "not-found",
            Self::Timeout => "timeout",
            Self::TooLarge => "too-large",
            Self::Invalid => "invalid",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        })
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::invalid(format!("JSON: {e}"))
    }
}

impl Finding {
    /// A failed check.
    pub fn fail(
        check_id: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Self {
            check_id: check_id.into(),
            severity,
            passed: false,
            message: message.into(),
            target: None,
            extra: "null".to_owned(),
        }
    }

    /// A passed check (severity `info`).
    pub fn pass(check_id: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            passed: true,
            ..Self::fail(check_id, Severity::Info, message)
        }
    }

    /// About `object`.
    pub fn on<K>(self, object: &K) -> Self
    where
        K: k8s_openapi::Resource
            + k8s_openapi::Metadata<Ty = k8s::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
    {
        let meta = object.metadata();
        self.target(
            K::KIND,
            meta.namespace.as_deref(),
            meta.name.as_deref().unwrap_or_default(),
        )
    }

    /// About the object `kind` `namespace`/`name`.
    pub fn target(mut self, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        self.target = Some(ObjectRef {
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        });
        self
    }

    /// With extra data (any JSON value).
    pub fn extra(mut self, extra: Value) -> Self {
        self.extra = extra.to_string();
        self
    }
}
