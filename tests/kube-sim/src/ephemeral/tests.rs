use serde_json::json;

use super::*;
use crate::resources;

fn setup(phase: &str) -> (Store, &'static ResourceInfo) {
    let store = Store::new(100);
    let pods = resources::by_plural("", "v1", "pods").unwrap();
    store.insert_many(
        pods,
        vec![
            json!({"metadata": {"name": "p", "namespace": "default", "labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "app", "image": "app:1"}]},
                    "status": {"phase": phase}}),
        ],
    );
    (store, pods)
}

fn smp(name: &str, image: &str) -> Value {
    json!({"spec": {"ephemeralContainers": [{"name": name, "image": image, "terminationMessagePolicy": "File"}]}})
}

#[test]
fn a_strategic_merge_patch_adds_a_running_ephemeral_container() {
    let (store, pods) = setup("Running");
    let ct = "application/strategic-merge-patch+json";
    let mut patch = smp("dbg", "busybox");
    // Other changes are dropped, not applied.
    patch["metadata"] = json!({"labels": {"a": "changed"}});
    let pod = update(
        &store,
        pods,
        "default",
        "p",
        Change::Patch(ct, patch),
        false,
    )
    .unwrap();
    assert_eq!(pod["metadata"]["labels"]["a"], "b");
    assert_eq!(
        pod["spec"]["ephemeralContainers"],
        json!([{"name": "dbg", "image": "busybox", "terminationMessagePolicy": "File",
                "terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "Always"}])
    );
    let st = &pod["status"]["ephemeralContainerStatuses"][0];
    assert_eq!(st["name"], "dbg");
    assert!(st["state"]["running"]["startedAt"].is_string(), "{st}");
    // A second one keeps the first.
    let pod = update(
        &store,
        pods,
        "default",
        "p",
        Change::Patch(ct, smp("dbg2", "busybox:1.36")),
        false,
    )
    .unwrap();
    assert_eq!(
        pod["spec"]["ephemeralContainers"][1]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(
        pod["status"]["ephemeralContainerStatuses"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn pending_pods_get_no_status() {
    let (store, pods) = setup("Pending");
    let pod = update(
        &store,
        pods,
        "default",
        "p",
        Change::Patch(
            "application/strategic-merge-patch+json",
            smp("dbg", "busybox"),
        ),
        false,
    )
    .unwrap();
    assert_eq!(pod["spec"]["ephemeralContainers"][0]["name"], "dbg");
    assert!(pod.pointer("/status/ephemeralContainerStatuses").is_none());
}

#[test]
fn invalid_updates_are_422() {
    let (store, pods) = setup("Running");
    let ct = "application/strategic-merge-patch+json";
    let err = update(
        &store,
        pods,
        "default",
        "p",
        Change::Patch(ct, smp("app", "")),
        false,
    )
    .unwrap_err();
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        "Pod \"p\" is invalid: [spec.ephemeralContainers[0].name: Duplicate value: \"app\", spec.ephemeralContainers[0].image: Required value]"
    );
    update(
        &store,
        pods,
        "default",
        "p",
        Change::Patch(ct, smp("dbg", "busybox")),
        false,
    )
    .unwrap();
    // Removing an existing one (a PUT without it) is forbidden.
    let mut pod = (*store.get(pods, Some("default"), "p").unwrap()).clone();
    pod["spec"]["ephemeralContainers"] = json!([]);
    let err = update(&store, pods, "default", "p", Change::Replace(pod), false).unwrap_err();
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .contains("existing ephemeral containers \"dbg\" may not be removed"),
        "{}",
        err.message
    );
    let mut ports = smp("x", "busybox");
    ports["spec"]["ephemeralContainers"][0]["ports"] = json!([{"containerPort": 80}]);
    let err = update(
        &store,
        pods,
        "default",
        "p",
        Change::Patch(ct, ports),
        false,
    )
    .unwrap_err();
    assert!(
        err.message.contains(
            "spec.ephemeralContainers[1].ports: Forbidden: cannot be set for an Ephemeral Container"
        ),
        "{}",
        err.message
    );
}
