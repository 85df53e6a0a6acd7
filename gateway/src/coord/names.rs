//! Lease names, labels and annotations of the coordination protocol.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha1::{Digest, Sha1};

pub const CLUSTER_ID_ANNOTATION: &str = "portico.io/cluster-id";
pub const REVISION_ANNOTATION: &str = "portico.io/config-revision";
pub const ADDRESS_ANNOTATION: &str = "portico.io/address";
pub const VERSION_ANNOTATION: &str = "portico.io/version";
pub const STARTED_ANNOTATION: &str = "portico.io/started";

/// `<product>-leader-lock`.
pub fn leader(product: &str) -> String {
    format!("{product}-leader-lock")
}

/// `<product>-cluster-<hex of the first 4 bytes of sha1(id)>`; `long` uses 8 bytes (the
/// fallback when two ids share the 4-byte prefix).
pub fn cluster(product: &str, id: &str, long: bool) -> String {
    format!(
        "{product}-cluster-{}",
        hash_prefix(id, if long { 8 } else { 4 })
    )
}

/// `<product>-instance-<hex of sha1(instanceID)[..4]>`.
pub fn instance(product: &str, instance_id: &str, long: bool) -> String {
    format!(
        "{product}-instance-{}",
        hash_prefix(instance_id, if long { 8 } else { 4 })
    )
}

fn hash_prefix(text: &str, bytes: usize) -> String {
    hex::encode(&Sha1::digest(text.as_bytes())[..bytes])
}

/// `app=<product>,type=<kind>`.
pub fn selector(product: &str, kind: &str) -> String {
    format!("app={product},type={kind}")
}

/// Labels of a cluster lease. `clusterID` is the id in unpadded base64url, left out when it is
/// not a valid label value (longer than 63 characters, or starting or ending with `-`/`_`):
/// readers use the annotation first anyway.
pub fn cluster_labels(product: &str, id: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("app".to_owned(), product.to_owned()),
        ("type".to_owned(), "cluster-sync".to_owned()),
    ]);
    let encoded = URL_SAFE_NO_PAD.encode(id);
    if valid_label_value(&encoded) {
        labels.insert("clusterID".to_owned(), encoded);
    }
    labels
}

pub fn instance_labels(product: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app".to_owned(), product.to_owned()),
        ("type".to_owned(), "instance".to_owned()),
    ])
}

/// `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`, at most 63 characters.
pub fn valid_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() <= 63
        && (bytes.is_empty()
            || (bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))))
}

/// The cluster id of a lease's labels (annotation missing): decode `clusterID`.
pub fn cluster_id_from_label(value: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(value)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_from_sha1() {
        // sha1("prod") = f6c433ac…
        assert_eq!(
            cluster("portico", "prod", false),
            "portico-cluster-f6c433ac"
        );
        assert_eq!(
            cluster("portico", "prod", true).len(),
            "portico-cluster-".len() + 16
        );
        assert_eq!(leader("acme"), "acme-leader-lock");
        assert!(instance("portico", "host-abc123", false).starts_with("portico-instance-"));
    }

    #[test]
    fn long_or_awkward_ids_drop_the_label() {
        let labels = cluster_labels("portico", "prod");
        assert_eq!(labels["clusterID"], "cHJvZA");
        assert_eq!(cluster_id_from_label("cHJvZA").as_deref(), Some("prod"));
        let long = "x".repeat(60);
        assert!(!cluster_labels("portico", &long).contains_key("clusterID"));
        assert!(!valid_label_value("-abc"));
        assert!(!valid_label_value(&"a".repeat(64)));
        assert!(valid_label_value("a.b-c_d"));
    }
}
