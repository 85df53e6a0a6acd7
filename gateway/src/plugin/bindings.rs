//! Host bindings generated from `wit/`. The three worlds share one set of import interfaces,
//! generated with the `inspector` world and reused by the others; `config-checker` is the
//! optional `config-check` export alone.
//!
//! Calls are async (they run on a fiber, see `engine/call.rs`): every export, and the imports
//! that wait on the network (`kube`, `http`); `log` and `config` answer at once.

#![allow(missing_docs, missing_debug_implementations)]

pub mod inspector {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "inspector",
        imports: {
            // A line past the call's log budget stops the guest.
            "portico:plugin/log.log": trappable,
            "portico:plugin/kube": async,
            "portico:plugin/http": async,
        },
        exports: { default: async },
    });
}

pub mod repo_sync {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "repo-sync",
        with: {
            "portico:plugin/types": super::inspector::portico::plugin::types,
            "portico:plugin/log": super::inspector::portico::plugin::log,
            "portico:plugin/config": super::inspector::portico::plugin::config,
            "portico:plugin/http": super::inspector::portico::plugin::http,
        },
        exports: { default: async },
    });
}

pub mod lifecycle_hook {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "lifecycle-hook",
        with: {
            "portico:plugin/types": super::inspector::portico::plugin::types,
            "portico:plugin/kube": super::inspector::portico::plugin::kube,
            "portico:plugin/log": super::inspector::portico::plugin::log,
            "portico:plugin/config": super::inspector::portico::plugin::config,
            "portico:plugin/http": super::inspector::portico::plugin::http,
        },
        exports: { default: async },
    });
}

/// The optional `config-check` export, which a component of any world may have.
pub mod config_checker {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "config-checker",
        with: {
            "portico:plugin/types": super::inspector::portico::plugin::types,
        },
        exports: { default: async },
    });
}

pub use inspector::portico::plugin::{config, http, kube, log, types};
