//! [`KubeSim`]: start a simulator in-process and drive it from tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::faults::Faults;
use crate::kubeconfig::{self, Credentials};
use crate::logs::PodLogs;
use crate::requestlog::{RequestLog, RequestRecord};
use crate::resources::{self, ResourceInfo};
use crate::server::{self, Shared};
use crate::status::ApiError;
use crate::store::{Object, Preconditions, Store};
use crate::tls::{Authority, ClientCert};
use crate::{seed, server::Error};

/// Options for [`KubeSim`]; start with [`KubeSim::builder`].
#[derive(Clone, Debug)]
pub struct KubeSimBuilder {
    listen: SocketAddr,
    tls: bool,
    token: Option<String>,
    client_cert_auth: bool,
    extra_sans: Vec<String>,
    bookmark_interval: Duration,
    watch_history: usize,
    watch_timeout: Duration,
    request_log_limit: usize,
    aggregated_discovery: bool,
    cache_lists: bool,
}

impl Default for KubeSimBuilder {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: true,
            token: None,
            client_cert_auth: false,
            extra_sans: Vec::new(),
            bookmark_interval: Duration::from_secs(60),
            watch_history: 10_000,
            watch_timeout: Duration::from_secs(1800),
            request_log_limit: 100_000,
            aggregated_discovery: true,
            cache_lists: false,
        }
    }
}

impl KubeSimBuilder {
    /// Address to listen on (default `127.0.0.1:0`).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// HTTPS with the simulator's own CA (default) or plain HTTP.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// The bearer token to accept (default: a random one).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Also accept client certificates signed by the simulator's CA (TLS only).
    pub fn client_cert_auth(mut self, on: bool) -> Self {
        self.client_cert_auth = on;
        self
    }

    /// An extra subject alternative name for the server certificate (IP or DNS name).
    pub fn extra_san(mut self, san: impl Into<String>) -> Self {
        self.extra_sans.push(san.into());
        self
    }

    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK (default 60 s, as the
    /// apiserver; use something short in tests).
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_interval = every.max(Duration::from_millis(1));
        self
    }

    /// How many change events are kept for watches (default 10,000). A watch from a version
    /// older than the kept window gets 410 `Expired`.
    pub fn watch_history(mut self, events: usize) -> Self {
        self.watch_history = events;
        self
    }

    /// How long a watch lasts when the client sets no `timeoutSeconds` (default 30 min).
    pub fn watch_timeout(mut self, timeout: Duration) -> Self {
        self.watch_timeout = timeout;
        self
    }

    /// Serve aggregated discovery (`apidiscovery.k8s.io/v2`) when asked (default on). Off, only
    /// the legacy documents are served and clients fall back to them.
    pub fn aggregated_discovery(mut self, on: bool) -> Self {
        self.aggregated_discovery = on;
        self
    }

    /// Keep full JSON lists encoded while the store is unchanged (default off), so a
    /// benchmark of a proxy in front sees little of the simulator's own encoding work. Clients
    /// get the same bytes either way (see [`crate::listcache`]).
    pub fn cache_lists(mut self, on: bool) -> Self {
        self.cache_lists = on;
        self
    }

    /// Starts the server on the current tokio runtime.
    pub async fn start(self) -> Result<KubeSim, Error> {
        let listener = server::bind(self.listen).map_err(|source| Error::Bind {
            addr: self.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: self.listen,
            source,
        })?;
        let authority = if self.tls {
            let mut sans = self.extra_sans.clone();
            if !addr.ip().is_loopback() && !addr.ip().is_unspecified() {
                sans.push(addr.ip().to_string());
            }
            Some(Authority::generate(&sans)?)
        } else {
            None
        };
        let acceptor = match &authority {
            Some(a) => Some(tokio_rustls::TlsAcceptor::from(
                a.server_config(self.client_cert_auth)?,
            )),
            None => None,
        };
        let token = self
            .token
            .unwrap_or_else(|| format!("kube-sim-{}", uuid::Uuid::new_v4().simple()));
        let mut tokens = HashMap::new();
        tokens.insert(token.clone(), "kube-sim-admin".to_string());
        let shared = Arc::new(Shared {
            store: Store::new(self.watch_history),
            faults: Faults::default(),
            requests: RequestLog::new(self.request_log_limit),
            logs: PodLogs::default(),
            files: Default::default(),
            tokens: Mutex::new(tokens),
            authority,
            client_cert_auth: self.client_cert_auth && self.tls,
            open_watches: AtomicUsize::new(0),
            bookmark_interval: self.bookmark_interval,
            default_watch_timeout: self.watch_timeout,
            aggregated_discovery: self.aggregated_discovery,
            addr,
            list_cache: self.cache_lists.then(Default::default),
        });
        let task = tokio::spawn(server::serve(shared.clone(), listener, acceptor));
        Ok(KubeSim {
            shared,
            token,
            task,
        })
    }
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct KubeSim {
    shared: Arc<Shared>,
    token: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        self.task.abort();
        // Close open connections and watches too.
        self.shared.faults.conn_epoch.send_modify(|e| *e += 1);
        self.shared.faults.drop_watches();
    }
}

fn resource_for(api_version: &str, kind: &str) -> Result<&'static ResourceInfo, ApiError> {
    resources::by_kind(api_version, kind).ok_or_else(|| {
        ApiError::bad_request(format!("kind {kind:?} in {api_version:?} is not served"))
    })
}

fn type_of(obj: &Value) -> Result<&'static ResourceInfo, ApiError> {
    resource_for(
        obj.get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        obj.get("kind").and_then(Value::as_str).unwrap_or_default(),
    )
}

fn ns_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/namespace").and_then(Value::as_str)
}

impl KubeSim {
    /// Options.
    pub fn builder() -> KubeSimBuilder {
        KubeSimBuilder::default()
    }

    /// Starts with the defaults: HTTPS on 127.0.0.1, a random token.
    pub async fn start() -> Result<Self, Error> {
        Self::builder().start().await
    }

    /// `https://127.0.0.1:PORT` (or `http://…`).
    pub fn url(&self) -> String {
        let scheme = if self.shared.authority.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.shared.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The CA certificate (PEM) when serving HTTPS.
    pub fn ca_pem(&self) -> Option<String> {
        self.shared.authority.as_ref().map(Authority::ca_pem)
    }

    /// The bearer token the simulator accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Accepts another bearer token, for `user`.
    pub fn add_token(&self, token: &str, user: &str) {
        self.shared
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.to_string(), user.to_string());
    }

    /// Mints a client certificate signed by the CA (CN = user, O = groups). It authenticates
    /// when the simulator was built with [`KubeSimBuilder::client_cert_auth`].
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<ClientCert, ApiError> {
        let authority = self
            .shared
            .authority
            .as_ref()
            .ok_or_else(|| ApiError::bad_request("client certificates need TLS"))?;
        authority
            .mint_client_cert(user, groups)
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// A kubeconfig (YAML) for this simulator with its CA and token; context `kube-sim`.
    pub fn kubeconfig(&self) -> String {
        kubeconfig::render(
            "kube-sim",
            &self.url(),
            self.ca_pem().as_deref(),
            &Credentials::Token(self.token.clone()),
        )
    }

    /// A kubeconfig authenticating with a client certificate instead of the token.
    pub fn kubeconfig_with_cert(&self, cert: &ClientCert) -> String {
        kubeconfig::render(
            "kube-sim",
            &self.url(),
            self.ca_pem().as_deref(),
            &Credentials::ClientCert {
                cert_pem: cert.cert_pem.clone(),
                key_pem: cert.key_pem.clone(),
            },
        )
    }

    /// Writes [`KubeSim::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// The object store, for direct reads and writes (they produce watch events like API
    /// calls do).
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.resource_version()
    }

    /// Creates an object given as JSON with `apiVersion`, `kind` and `metadata`.
    pub fn create(&self, obj: Value) -> Result<Object, ApiError> {
        let res = type_of(&obj)?;
        let ns = ns_of(&obj).map(str::to_string);
        self.shared.store.create(res, ns.as_deref(), obj, false)
    }

    /// Replaces an object (same rules as PUT).
    pub fn replace(&self, obj: Value) -> Result<Object, ApiError> {
        let res = type_of(&obj)?;
        let ns = ns_of(&obj).map(str::to_string);
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.shared.store.update(
            res,
            ns.as_deref(),
            &name,
            obj,
            crate::store::Part::Main,
            false,
        )
    }

    /// Reads an object.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Object, ApiError> {
        self.shared
            .store
            .get(resource_for(api_version, kind)?, ns, name)
    }

    /// Lists objects of a kind (every namespace when `ns` is `None`) matching a label selector
    /// (`""`: all), in key order.
    pub fn list(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        label_selector: &str,
    ) -> Result<Vec<Object>, ApiError> {
        let selectors = crate::selector::Selectors {
            labels: crate::selector::LabelSelector::parse(label_selector)?,
            ..Default::default()
        };
        let page =
            self.shared
                .store
                .list(resource_for(api_version, kind)?, ns, &selectors, None, None)?;
        Ok(page.items)
    }

    /// Deletes an object.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Object, ApiError> {
        let res = resource_for(api_version, kind)?;
        let d = self
            .shared
            .store
            .delete(res, ns, name, &Preconditions::default(), false)?;
        if d.gone {
            self.shared.logs.pod_deleted(res, ns, name);
        }
        Ok(d.object)
    }

    /// Loads multi-document YAML (missing namespaces are created). Returns the object count.
    pub fn load_yaml(&self, yaml: &str) -> Result<usize, seed::Error> {
        seed::load(&self.shared.store, seed::parse_yaml(yaml)?)
    }

    /// Adds `count` running pods `pod-00000`… to `namespace` (see [`seed::pods`]).
    pub fn seed_pods(&self, namespace: &str, count: usize, nodes: usize) -> usize {
        let res = resources::by_plural("", "v1", "pods").expect("pods");
        self.shared
            .store
            .insert_many(res, seed::pods(namespace, count, nodes))
    }

    /// Adds `count` ready nodes `node-0000`….
    pub fn seed_nodes(&self, count: usize) -> usize {
        let res = resources::by_plural("", "v1", "nodes").expect("nodes");
        self.shared.store.insert_many(res, seed::nodes(count))
    }

    /// Sets the log text of a pod (all its containers unless one has its own text).
    pub fn set_pod_log(&self, ns: &str, pod: &str, text: &str) {
        self.shared.logs.set(ns, pod, "", text);
    }

    /// Sets the log text of one container of a pod.
    pub fn set_container_log(&self, ns: &str, pod: &str, container: &str, text: &str) {
        self.shared.logs.set(ns, pod, container, text);
    }

    /// Appends to a pod's log; `follow=true` readers receive it as it comes.
    pub fn append_pod_log(&self, ns: &str, pod: &str, text: &str) {
        self.shared.logs.append(ns, pod, "", text);
    }

    /// A container's in-memory file tree (what exec's `cat`, `tar`, `test`… and `kubectl cp`
    /// see); `None` when the pod does not exist. Lock it to read or change files.
    pub fn container_files(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
    ) -> Option<std::sync::Arc<std::sync::Mutex<crate::files::Tree>>> {
        let res = resources::by_plural("", "v1", "pods").expect("pods are served");
        let obj = self.shared.store.get(res, Some(ns), pod).ok()?;
        let uid = obj.pointer("/metadata/uid").and_then(Value::as_str)?;
        Some(self.shared.files.tree(ns, pod, uid, container))
    }

    /// Fault injection: latency, failures, freezing, dropped watches.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Stops listening (connects are refused) and closes open connections. Returns once the
    /// port is closed.
    pub async fn refuse_connections(&self) {
        self.shared.faults.set_accepting(false);
        let mut rx = self.shared.faults.listening.subscribe();
        crate::server::wait_flag(&mut rx, false).await;
    }

    /// Listens on the same address again. Returns once it is bound — or after 10 s if
    /// something else holds the port (the server keeps trying; see
    /// [`KubeSim::is_listening`]).
    pub async fn accept_connections(&self) {
        self.shared.faults.set_accepting(true);
        let mut rx = self.shared.faults.listening.subscribe();
        let bound = tokio::time::timeout(
            Duration::from_secs(10),
            crate::server::wait_flag(&mut rx, true),
        )
        .await;
        if bound.is_err() {
            tracing::warn!(addr = %self.shared.addr, "could not bind the address again within 10 s");
        }
    }

    /// Whether the listener is bound (false while connections are refused).
    pub fn is_listening(&self) -> bool {
        *self.shared.faults.listening.borrow()
    }

    /// Every request received so far (bounded log), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests.snapshot()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared.requests.clear();
    }

    /// Watches open right now.
    pub fn open_watches(&self) -> usize {
        self.shared.open_watches.load(Ordering::SeqCst)
    }

    /// Polls until `pred(open watches)` holds or `timeout` passes; returns the last count.
    pub async fn wait_for_watches(&self, timeout: Duration, pred: impl Fn(usize) -> bool) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let n = self.open_watches();
            if pred(n) || tokio::time::Instant::now() >= deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Changes how many events are kept for watches (smaller: older versions expire sooner).
    pub fn set_watch_history(&self, events: usize) {
        self.shared.store.set_history_limit(events);
    }
}
