//! kube-rs against the simulator: every status a Lease client depends on, watches, patches.

use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent,
    WatchParams,
};
use kube_sim::KubeSim;
use serde_json::json;

async fn client(sim: &KubeSim) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig()).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    kube::Client::try_from(config).unwrap()
}

async fn start() -> (KubeSim, kube::Client) {
    let sim = KubeSim::builder()
        .bookmark_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let c = client(&sim).await;
    (sim, c)
}

fn lease(name: &str, holder: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("app".to_string(), "portico".to_string())].into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }),
    }
}

fn api_status(err: kube::Error) -> (u16, String, String) {
    match err {
        kube::Error::Api(s) => (s.code, s.reason, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Next watch event within 10 s.
async fn next<K>(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> WatchEvent<K> {
    tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("an event within 10 s")
        .expect("stream ok")
        .expect("stream not ended")
}

#[tokio::test]
async fn lease_statuses() {
    let (_sim, c) = start().await;
    let leases: Api<Lease> = Api::namespaced(c.clone(), "default");

    let created = leases
        .create(&PostParams::default(), &lease("l1", "a"))
        .await
        .unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    let rv1 = created.metadata.resource_version.clone().unwrap();
    assert!(!uid.is_empty());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));

    let (code, reason, message) = api_status(
        leases
            .create(&PostParams::default(), &lease("l1", "b"))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(message, "leases.coordination.k8s.io \"l1\" already exists");

    let got = leases.get("l1").await.unwrap();
    assert_eq!(got.spec.unwrap().holder_identity.as_deref(), Some("a"));

    let (code, reason, message) = api_status(leases.get("missing").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    assert_eq!(message, "leases.coordination.k8s.io \"missing\" not found");

    // Conditional update with the current version succeeds and moves the version.
    let mut next_lease = created.clone();
    next_lease.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let replaced = leases
        .replace("l1", &PostParams::default(), &next_lease)
        .await
        .unwrap();
    let rv2 = replaced.metadata.resource_version.clone().unwrap();
    assert_ne!(rv1, rv2);

    // The same (now stale) version: 409 Conflict.
    let (code, reason, message) = api_status(
        leases
            .replace("l1", &PostParams::default(), &next_lease)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert_eq!(
        message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"l1\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // Leases refuse unconditional updates: 422 Invalid.
    let mut unconditional = replaced.clone();
    unconditional.metadata.resource_version = None;
    let (code, reason, message) = api_status(
        leases
            .replace("l1", &PostParams::default(), &unconditional)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert!(
        message.contains(
            "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
        ),
        "{message}"
    );

    // Delete preconditions that do not match: 409 Conflict, nothing deleted.
    for pre in [
        Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        },
        Preconditions {
            uid: Some(uid.clone()),
            resource_version: Some(rv1.clone()),
        },
    ] {
        let dp = DeleteParams {
            preconditions: Some(pre),
            ..DeleteParams::default()
        };
        let (code, reason, message) = api_status(leases.delete("l1", &dp).await.unwrap_err());
        assert_eq!((code, reason.as_str()), (409, "Conflict"), "{message}");
        assert!(message.contains("Precondition failed"), "{message}");
    }
    leases.get("l1").await.expect("still there");

    // Matching preconditions delete it; leases answer with a success Status.
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: Some(rv2),
        }),
        ..DeleteParams::default()
    };
    let deleted = leases.delete("l1", &dp).await.unwrap();
    let status = deleted.right().expect("a Status for leases");
    assert_eq!(status.details.unwrap().name, "l1");
    let (code, _, _) = api_status(
        leases
            .delete("l1", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 404);
}

#[tokio::test]
async fn other_kinds_allow_unconditional_update() {
    let (_sim, c) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c, "default");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("c".into()),
            ..ObjectMeta::default()
        },
        data: Some([("k".to_string(), "1".to_string())].into()),
        ..ConfigMap::default()
    };
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let mut update = cm.clone();
    update.data = Some([("k".to_string(), "2".to_string())].into());
    let updated = cms
        .replace("c", &PostParams::default(), &update)
        .await
        .unwrap();
    assert_eq!(updated.data.unwrap()["k"], "2");
}

#[tokio::test]
async fn watch_sees_changes_and_deleted_carries_last_state() {
    let (_sim, c) = start().await;
    let leases: Api<Lease> = Api::namespaced(c, "default");
    let list = leases.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let wp = WatchParams::default().timeout(30).disable_bookmarks();
    let mut stream = leases.watch(&wp, &rv).await.unwrap().boxed();

    let created = leases
        .create(&PostParams::default(), &lease("w", "a"))
        .await
        .unwrap();
    let mut changed = created.clone();
    changed.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases
        .replace("w", &PostParams::default(), &changed)
        .await
        .unwrap();
    leases.delete("w", &DeleteParams::default()).await.unwrap();

    match next(&mut stream).await {
        WatchEvent::Added(l) => assert_eq!(l.metadata.name.as_deref(), Some("w")),
        other => panic!("expected Added, got {other:?}"),
    }
    match next(&mut stream).await {
        WatchEvent::Modified(l) => {
            assert_eq!(l.spec.unwrap().holder_identity.as_deref(), Some("b"))
        }
        other => panic!("expected Modified, got {other:?}"),
    }
    match next(&mut stream).await {
        WatchEvent::Deleted(l) => {
            assert_eq!(l.spec.unwrap().holder_identity.as_deref(), Some("b"));
        }
        other => panic!("expected Deleted, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_from_zero_lists_first_and_filters_by_label() {
    let (_sim, c) = start().await;
    let leases: Api<Lease> = Api::namespaced(c, "default");
    leases
        .create(&PostParams::default(), &lease("one", "a"))
        .await
        .unwrap();
    let mut other = lease("two", "a");
    other.metadata.labels = Some([("app".to_string(), "else".to_string())].into());
    leases.create(&PostParams::default(), &other).await.unwrap();

    let wp = WatchParams::default()
        .labels("app=portico")
        .timeout(30)
        .disable_bookmarks();
    let mut stream = leases.watch(&wp, "0").await.unwrap().boxed();
    match next(&mut stream).await {
        WatchEvent::Added(l) => assert_eq!(l.metadata.name.as_deref(), Some("one")),
        e => panic!("expected Added(one), got {e:?}"),
    }
    leases
        .create(&PostParams::default(), &lease("three", "a"))
        .await
        .unwrap();
    match next(&mut stream).await {
        WatchEvent::Added(l) => assert_eq!(l.metadata.name.as_deref(), Some("three")),
        e => panic!("expected Added(three), got {e:?}"),
    }
}

#[tokio::test]
async fn watch_bookmarks_arrive() {
    let (sim, c) = start().await;
    let leases: Api<Lease> = Api::namespaced(c, "default");
    let wp = WatchParams::default().timeout(30);
    let rv = sim.resource_version().to_string();
    let mut stream = leases.watch(&wp, &rv).await.unwrap().boxed();
    match next(&mut stream).await {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, rv),
        e => panic!("expected a bookmark, got {e:?}"),
    }
}

#[tokio::test]
async fn watch_from_a_compacted_version_is_gone() {
    let sim = KubeSim::builder().watch_history(5).start().await.unwrap();
    let c = client(&sim).await;
    let leases: Api<Lease> = Api::namespaced(c, "default");
    let first = leases
        .create(&PostParams::default(), &lease("g0", "a"))
        .await
        .unwrap();
    let old_rv = first.metadata.resource_version.unwrap();
    for i in 1..10 {
        leases
            .create(&PostParams::default(), &lease(&format!("g{i}"), "a"))
            .await
            .unwrap();
    }
    let wp = WatchParams::default().timeout(30).disable_bookmarks();
    let mut stream = leases.watch(&wp, &old_rv).await.unwrap().boxed();
    match next(&mut stream).await {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
            assert!(
                status.message.starts_with("too old resource version"),
                "{}",
                status.message
            );
        }
        e => panic!("expected a 410 error event, got {e:?}"),
    }
    // A recent version still works.
    let rv = sim.resource_version().to_string();
    let mut stream = leases.watch(&wp, &rv).await.unwrap().boxed();
    leases
        .create(&PostParams::default(), &lease("fresh", "a"))
        .await
        .unwrap();
    match next(&mut stream).await {
        WatchEvent::Added(l) => assert_eq!(l.metadata.name.as_deref(), Some("fresh")),
        e => panic!("expected Added, got {e:?}"),
    }
}

#[tokio::test]
async fn patches_and_server_side_apply() {
    let (_sim, c) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    // Server-side apply creates when missing.
    let applied = cms
        .patch(
            "ssa",
            &PatchParams::apply("test").force(),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "ssa"}, "data": {"a": "1"}
            })),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["a"], "1");
    let merged = cms
        .patch(
            "ssa",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"b": "2"}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.data.as_ref().unwrap().len(), 2);
    // Strategic merge patch merges containers by name.
    let pods: Api<Pod> = Api::namespaced(c, "default");
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let pod = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}})),
        )
        .await
        .unwrap();
    let images: Vec<String> = pod
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.image.unwrap())
        .collect();
    assert_eq!(images, vec!["a:1", "b:2"]);
    assert_eq!(pod.metadata.generation, Some(2));
}

#[tokio::test]
async fn namespaces_and_paging() {
    let (sim, c) = start().await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "nowhere");
    let (code, reason, message) = api_status(
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": []}}))
                .unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    assert_eq!(message, "namespaces \"nowhere\" not found");

    let nss: Api<Namespace> = Api::all(c.clone());
    let names: Vec<String> = nss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");

    sim.seed_pods("a", 25, 2);
    sim.seed_pods("b", 5, 2);
    let all: Api<Pod> = Api::all(c);
    let mut params = ListParams::default().limit(10);
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let page = all.list(&params).await.unwrap();
        seen += page.items.len();
        pages += 1;
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!((seen, pages), (30, 3));
    assert_eq!(sim.list("v1", "Pod", None, "app=app-1").unwrap().len(), 4);
    assert_eq!(sim.list("v1", "Pod", Some("b"), "").unwrap().len(), 5);
    let selected = all
        .list(
            &ListParams::default()
                .labels("app in (app-1,app-2)")
                .fields("metadata.namespace=a"),
        )
        .await
        .unwrap();
    assert_eq!(selected.items.len(), 6);
}
