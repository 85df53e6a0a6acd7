//! # kube-sim: a Kubernetes API server simulator
//!
//! Real clients — `kubectl`, the Python `kubernetes` package, kube-rs — work against it
//! unchanged. It follows the apiserver's documented behaviour (status codes, `Status` bodies,
//! watch semantics); it is not shaped after any one client.
//!
//! ## Library
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use kube_sim::KubeSim;
//!
//! let sim = KubeSim::builder()
//!     .bookmark_interval(Duration::from_millis(100)) // short in tests
//!     .watch_history(1_000)                          // older versions get 410 Expired
//!     .start()
//!     .await?;                                       // HTTPS on 127.0.0.1:<random port>
//! println!("{} {} {:?}", sim.url(), sim.token(), sim.ca_pem());
//! sim.write_kubeconfig("/tmp/kubeconfig")?;          // for kubectl
//! sim.seed_pods("default", 10_000, 100);
//! sim.set_pod_log("default", "pod-00000", "hello\n");
//! sim.faults().set_failure_rate(0.5, 503);           // half the requests get a 503 Status
//! sim.refuse_connections().await;                    // the port is closed…
//! sim.accept_connections().await;                    // …and bound again
//! for r in sim.requests() {
//!     println!("{} {} {:?}", r.method, r.path, r.header("authorization"));
//! }
//! # Ok(()) }
//! ```
//!
//! Main types: [`KubeSim`] (the running server and its controls), [`KubeSimBuilder`],
//! [`Faults`] (latency, failure rate + code, freeze, dropped watches), [`RequestRecord`],
//! [`Store`] (direct object access), [`ApiError`] (a `Status`), [`ClientCert`].
//!
//! ## What it serves
//!
//! - Plain HTTP, or HTTPS with its own CA (`rcgen`; SANs 127.0.0.1, ::1, localhost), HTTP/2 via
//!   ALPN (`h2`, `http/1.1`) and HTTP/1.1; bearer tokens, and optionally client certificates
//!   signed by its CA. Missing or wrong credentials → 401 `Status`. `/healthz`, `/livez`,
//!   `/readyz` need none.
//! - Discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{g}`, `/apis/{g}/{v}`;
//!   aggregated discovery (`apidiscovery.k8s.io/v2`) for clients that ask for it, which can be
//!   switched off ([`KubeSimBuilder::aggregated_discovery`]) to exercise the legacy fallback.
//!   OpenAPI v3 documents list paths, operations and parameters, and the built-in kinds'
//!   schemas for `kubectl explain` (see [`openapi`]); `/openapi/v2` answers 404. kubectl
//!   leaves validation to the server and computes strategic merge patches from its
//!   compiled-in types.
//! - Kinds: namespaces, pods (+`status`, `log`, `exec`, `attach`, `portforward` over WebSocket
//!   and SPDY/3.1: see [`exec`], [`attach`], [`portforward`], [`spdy`]), services, endpoints, configmaps,
//!   secrets, nodes, events, serviceaccounts, persistentvolumeclaims, persistentvolumes
//!   (core/v1); deployments, replicasets, statefulsets, daemonsets (apps/v1); jobs, cronjobs
//!   (batch/v1); ingresses, ingressclasses, networkpolicies (networking.k8s.io/v1);
//!   endpointslices (discovery.k8s.io/v1); horizontalpodautoscalers (autoscaling/v2);
//!   storageclasses (storage.k8s.io/v1); validating/mutating webhook configurations
//!   (admissionregistration.k8s.io/v1); roles, clusterroles, rolebindings, clusterrolebindings
//!   (rbac.authorization.k8s.io/v1); gatewayclasses, gateways, httproutes
//!   (gateway.networking.k8s.io/v1, as if their CRDs were installed); leases
//!   (coordination.k8s.io/v1). `status`
//!   subresources where the apiserver has them; `scale` (`autoscaling/v1` `Scale`) for
//!   deployments, replicasets and statefulsets.
//!   Namespaced and cluster paths, lists across namespaces, the legacy `/watch/` prefix.
//! - Semantics: one global `resourceVersion`; `uid`, `creationTimestamp`, `generation`
//!   (bumped on spec changes, for kinds that track it); 409 `AlreadyExists`; 404 `NotFound`;
//!   409 `Conflict` for a stale `resourceVersion` or failed delete `preconditions`; 422
//!   `Invalid` for a Lease update without `resourceVersion` (other kinds allow unconditional
//!   updates); no-op updates keep the version; status subresources; finalizers
//!   (`deletionTimestamp`, removal when the last one goes); `dryRun=All`; deletes return the
//!   object for pods, services, serviceaccounts, PVs, PVCs and namespaces and a success
//!   `Status` for the rest; deletecollection; a namespaced create in a missing namespace → 404
//!   `namespaces "x" not found`; a create carrying a `resourceVersion` → bare 500, as etcd
//!   storage answers.
//! - Patches: JSON merge patch, JSON patch, strategic merge patch (subset, see [`patch`]) and
//!   server-side apply (`application/apply-patch+yaml`, creates when missing).
//! - Lists: `labelSelector` (`=`, `==`, `!=`, `in`, `notin`, exists, `!`), `fieldSelector`
//!   (`metadata.name`, `metadata.namespace`, and per-kind fields like `spec.nodeName`),
//!   `limit`/`continue` with `remainingItemCount`, items without `kind`/`apiVersion` as the
//!   apiserver sends them; `Table` output for `kubectl get`; JSON or YAML.
//! - Watches: see [`watch`]: initial `ADDED` events, live events flushed one JSON line at a
//!   time, `timeoutSeconds`, `allowWatchBookmarks`, `sendInitialEvents`, 410 `Expired` as an
//!   `ERROR` event for versions older than the kept history, selector transitions, `DELETED`
//!   carrying the last state.
//! - `pods/log` with `tailLines`, `timestamps`, `limitBytes`, `follow` (see [`logs`]);
//!   `pods/exec` over WebSocket `v5.channel.k8s.io`/`v4.channel.k8s.io` with built-in
//!   commands (see [`exec`]).
//!
//! ## Deliberately simplified
//!
//! - No controllers, scheduler or kubelet: deployments make no pods, pods stay in the phase
//!   they are given (created pods are `Pending`), deleting a namespace removes its contents at
//!   once, pods are deleted immediately (no grace period).
//! - No admission, RBAC or defaulting beyond a few fields; every authenticated user may do
//!   anything, including impersonating (`Impersonate-User`/`-Group` change who the request is
//!   from, as `kubectl auth whoami --as` shows). `SelfSubjectReview`,
//!   `SelfSubjectAccessReview` (always allowed) and `SelfSubjectRulesReview` are served for
//!   `kubectl auth`.
//! - Server-side apply tracks no field ownership (`managedFields`): fields are merged in, never
//!   removed, and conflicts never reported.
//! - Paging continues from the last key over the current state (not an MVCC snapshot); the
//!   list's `resourceVersion` is that of the first page.
//! - Responses are JSON, YAML, `Table`, or protobuf for namespaces, configmaps, secrets,
//!   serviceaccounts, leases and pods, whose protobuf request bodies are also decoded (see
//!   [`protobuf`]); `Accept` is negotiated with q-values, 406 when nothing fits; no CBOR.
//! - `metrics.k8s.io/v1beta1` with computed usage ([`metrics`]), `pods/ephemeralcontainers`
//!   ([`ephemeral`]), `Warning` headers ([`warnings`]) and APF headers ([`apf`]).
//! - No field validation: unknown fields are kept, not rejected, and
//!   `fieldValidation` is ignored.
//! - exec runs built-in commands, not containers; no SPDY; `attach`, `port-forward` and the
//!   `proxy` subresources are not served.
//! - A watch with no `timeoutSeconds` lasts 30 minutes (the apiserver picks 30–60).

pub mod apf;
pub mod api;
pub mod attach;
pub mod discovery;
pub mod ephemeral;
pub mod exec;
pub mod faults;
pub mod files;
pub mod kubeconfig;
pub mod listcache;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod patch;
pub mod portforward;
pub mod protobuf;
pub mod requestlog;
pub mod resources;
pub mod seed;
pub mod selector;
pub mod server;
pub mod shell;
pub mod sim;
pub mod spdy;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod upgrade;
pub mod warnings;
pub mod watch;

pub use faults::{FaultSettings, Faults};
pub use requestlog::RequestRecord;
pub use sim::{KubeSim, KubeSimBuilder};
pub use status::ApiError;
pub use store::{Object, Store};
pub use tls::ClientCert;
