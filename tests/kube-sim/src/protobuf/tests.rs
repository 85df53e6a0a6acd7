use serde_json::json;

use super::*;

fn field(n: u64, data: &[u8]) -> Vec<u8> {
    let mut out = vec![(n << 3 | 2) as u8, data.len() as u8];
    out.extend_from_slice(data);
    out
}

#[test]
fn decodes_a_configmap() {
    let meta = [
        field(1, b"cm"),
        field(2, b""),
        field(11, &[field(1, b"a"), field(2, b"b")].concat()),
        // client-go sends the zero creationTimestamp as an empty message.
        field(8, b""),
    ]
    .concat();
    let raw = [
        field(1, &meta),
        field(2, &[field(1, b"k"), field(2, b"v")].concat()),
        vec![4 << 3, 1],
    ]
    .concat();
    let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
    let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
    assert_eq!(
        decode(&body).unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "immutable": true,
               "metadata": {"name": "cm", "labels": {"a": "b"}}, "data": {"k": "v"}})
    );
}

#[test]
fn other_kinds_and_unknown_fields_are_unsupported() {
    let type_meta = [field(1, b"apps/v1"), field(2, b"Deployment")].concat();
    let body = [MAGIC.to_vec(), field(1, &type_meta)].concat();
    assert_eq!(decode(&body).unwrap_err().code, 415);
    let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
    let raw = field(9, b"x");
    let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
    let err = decode(&body).unwrap_err();
    assert_eq!(err.code, 415);
    assert!(
        err.message.contains("field 9 of ConfigMap"),
        "{}",
        err.message
    );
}

#[test]
fn objects_round_trip() {
    let objects = [
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "n", "uid": "u", "resourceVersion": "7",
                            "creationTimestamp": "2026-01-02T03:04:05Z",
                            "labels": {"kubernetes.io/metadata.name": "n"},
                            "managedFields": [{"manager": "kubectl", "operation": "Apply",
                                "apiVersion": "v1", "time": "2026-01-02T03:04:05Z",
                                "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}]},
               "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": "s", "namespace": "d", "finalizers": ["a/b"],
                            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p",
                                                 "uid": "x", "controller": true}]},
               "data": {"k": "AAEC"}}),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "l", "namespace": "d", "generation": 3},
               "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15,
                        "renewTime": "2026-01-02T03:04:05.123456Z", "leaseTransitions": 2}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "sa", "namespace": "d"},
               "imagePullSecrets": [{"name": "r"}], "automountServiceAccountToken": false}),
    ];
    for obj in objects {
        let bytes = encode_object(&obj).expect("encodable");
        assert!(bytes.starts_with(b"k8s\0"));
        assert_eq!(decode(&bytes).unwrap(), obj);
    }
}

#[test]
fn objects_with_unknown_fields_or_kinds_are_not_encoded() {
    assert!(
        encode_object(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c"}, "surprise": 1}))
        .is_none()
    );
    assert!(
        encode_object(&json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {}}))
            .is_none()
    );
    // Deep inside a Pod too, and inside an embedded message.
    assert!(
        encode_object(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {},
            "spec": {"containers": [{"name": "a", "livenessProbe": {"surprise": {}}}]}}))
        .is_none()
    );
}

/// A Pod as `kubectl debug` and typed clients send it, with the special shapes: embedded
/// messages (`Volume.VolumeSource`, `Probe.ProbeHandler`, `EphemeralContainerCommon`),
/// `IntOrString`, quantities and their maps, unpacked repeated ints, times.
fn rich_pod() -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "d", "labels": {"app": "x"}},
        "spec": {
            "nodeName": "node-1", "restartPolicy": "Never", "hostPID": true,
            "hostNetwork": true, "shareProcessNamespace": true,
            "terminationGracePeriodSeconds": 30,
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"operator": "Exists"}, {"key": "k", "effect": "NoSchedule",
                             "tolerationSeconds": -1}],
            "volumes": [
                {"name": "host-root", "hostPath": {"path": "/", "type": "Directory"}},
                {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420,
                                              "items": [{"key": "a", "path": "b"}]}},
            ],
            "overhead": {"cpu": "10m"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}},
            "containers": [{
                "name": "app", "image": "busybox", "command": ["sh", "-c", "sleep 1"],
                "stdin": true, "tty": true, "terminationMessagePolicy": "FallbackToLogsOnError",
                "env": [{"name": "A", "value": "1"},
                        {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "1", "memory": "64Mi"}, "requests": {"cpu": "250m"}},
                "volumeMounts": [{"name": "host-root", "mountPath": "/host"}],
                "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_PTRACE"]}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                                  "initialDelaySeconds": 3},
                "readinessProbe": {"tcpSocket": {"port": 8080}},
                "restartPolicyRules": [{"action": "Restart",
                    "exitCodes": {"operator": "In", "values": [1, 2, 42]}}],
            }],
            "ephemeralContainers": [{"name": "debugger", "image": "busybox",
                                     "targetContainerName": "app", "stdin": true}],
        },
        "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}],
            "startTime": "2026-01-02T03:04:05Z",
            "conditions": [{"type": "Ready", "status": "True",
                            "lastTransitionTime": "2026-01-02T03:04:06Z"}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                "image": "busybox", "imageID": "", "started": true,
                "state": {"running": {"startedAt": "2026-01-02T03:04:05Z"}}}]}})
}

#[test]
fn a_pod_round_trips() {
    let mut pod = rich_pod();
    let bytes = encode_object(&pod).expect("encodable");
    // The zero `restartCount` and the empty `imageID` are written and read back as Go's
    // JSON omits or keeps them: the int stays, the empty string goes.
    pod["status"]["containerStatuses"][0]
        .as_object_mut()
        .unwrap()
        .remove("imageID");
    assert_eq!(decode(&bytes).unwrap(), pod);
}

#[test]
fn pod_wire_layout_follows_generated_proto() {
    // Probe { ProbeHandler handler = 1 { HTTPGetAction httpGet = 2 { path = 1,
    // IntOrString port = 2 { type = 1, intVal = 2, strVal = 3 } } }, initialDelaySeconds = 2 }
    let port = [vec![1 << 3, 1], vec![2 << 3, 0], field(3, b"http")].concat();
    let http_get = [field(1, b"/h"), field(2, &port)].concat();
    let probe = [field(1, &field(2, &http_get)), vec![2 << 3, 3]].concat();
    // ResourceRequirements { map<string, Quantity> limits = 1 }
    let limits = field(1, &[field(1, b"cpu"), field(2, &field(1, b"1"))].concat());
    let container = [
        field(1, b"app"),
        field(8, &limits),
        field(10, &probe),
        // Volume { name = 1, VolumeSource volumeSource = 2 { HostPathVolumeSource hostPath = 1 } }
    ]
    .concat();
    let volume = [field(1, b"v"), field(2, &field(1, &field(1, b"/")))].concat();
    let spec = [field(1, &volume), field(2, &container), vec![13 << 3, 1]].concat();
    let raw = [field(1, &field(1, b"p")), field(2, &spec)].concat();
    let type_meta = [field(1, b"v1"), field(2, b"Pod")].concat();
    let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
    assert_eq!(
        decode(&body).unwrap(),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"hostIPC": true,
                "volumes": [{"name": "v", "hostPath": {"path": "/"}}],
                "containers": [{"name": "app", "resources": {"limits": {"cpu": "1"}},
                    "livenessProbe": {"httpGet": {"path": "/h", "port": "http"},
                                      "initialDelaySeconds": 3}}]}})
    );
    // A Pod field the tables do not have (here HTTPGetAction 9, under the embedded
    // ProbeHandler) is a 415, not a silent loss.
    let http_get = [field(1, b"/h"), field(9, b"x")].concat();
    let probe = field(1, &field(2, &http_get));
    let spec = field(2, &[field(1, b"app"), field(10, &probe)].concat());
    let raw = [field(1, &field(1, b"p")), field(2, &spec)].concat();
    let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
    let err = decode(&body).unwrap_err();
    assert_eq!(err.code, 415);
    assert!(
        err.message.contains("field 9 of HTTPGetAction"),
        "{}",
        err.message
    );
}

#[test]
fn lists_round_trip() {
    let items = [
        json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"x": "1"}}),
        json!({"metadata": {"name": "b", "namespace": "d"}}),
    ];
    let meta = json!({"resourceVersion": "12", "continue": "tok", "remainingItemCount": 4});
    let bytes = encode_list("v1", "ConfigMap", &meta, items.iter()).unwrap();
    assert_eq!(
        decode_list(&bytes).unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": meta, "items": items})
    );
}
