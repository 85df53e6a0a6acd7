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
    assert!(encode_object(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}})).is_none());
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
