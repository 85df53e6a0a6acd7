//! Generates the `components.schemas` of the OpenAPI v3 documents kube-sim serves
//! (`/openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/VERSION`), from k8s-openapi's `schemars`
//! implementations, and writes them gzip-compressed to `$OUT_DIR/openapi-schemas.json.gz`
//! as one JSON object: `{"api/v1": {"io.k8s.api.core.v1.Pod": {…}, …}, "apis/apps/v1": …}`.
//!
//! Done at build time, not at run time, so k8s-openapi's `schemars` feature is only ever
//! compiled into this build script (a host build-dependency keeps its own features) and never
//! into the gateway's k8s-openapi.
//!
//! schemars' output is brought to the shape the kube-apiserver serves (kube-openapi's v3
//! builder, as in kubernetes/kubernetes `api/openapi-spec/v3/*.json`):
//! - `$ref`s point into `#/components/schemas/` and a `$ref` with siblings (a field's
//!   description) is wrapped as `allOf: [{$ref}]` (schemars' `openapi3` settings);
//! - the top-level kinds carry `x-kubernetes-group-version-kind` (a one-element list), which
//!   `kubectl explain` matches against the GVK of the resource's path operations;
//! - k8s-openapi marks `metadata` as required on every kind because its Rust field is not an
//!   `Option`; the apiserver does not, so `kubectl explain` would print a false `-required-`;
//! - `IntOrString` and `Quantity` carry `x-kubernetes-int-or-string` (the CRD structural
//!   schema marker) in k8s-openapi; the apiserver's built-in documents describe them with
//!   `oneOf` (`format: int-or-string` for IntOrString).
//!
//! Not reproduced: the `x-kubernetes-list-type`/`-map-keys`/`-patch-*` extensions (k8s-openapi
//! does not carry them) and field defaults (`default: {}`). kubectl reads the patch extensions
//! only for kinds whose PATCH operation declares a strategic-merge request body, which the
//! simulator's path documents do not, so `kubectl apply` keeps using its compiled-in types.

use std::io::Write as _;

use k8s_openapi::Resource;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

/// One group-version's document: its path key and generator.
struct Doc {
    path: String,
    generator: SchemaGenerator,
    kinds: Vec<(String, &'static str, &'static str, &'static str)>,
}

fn doc_for<'a>(docs: &'a mut Vec<Doc>, group: &str, version: &str) -> &'a mut Doc {
    let path = if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    };
    if let Some(i) = docs.iter().position(|d| d.path == path) {
        return &mut docs[i];
    }
    docs.push(Doc {
        path,
        generator: SchemaSettings::openapi3().into_generator(),
        kinds: Vec::new(),
    });
    docs.last_mut().expect("just pushed")
}

fn add<T: JsonSchema + Resource>(docs: &mut Vec<Doc>) {
    let doc = doc_for(docs, T::GROUP, T::VERSION);
    doc.generator.subschema_for::<T>();
    doc.kinds
        .push((T::schema_name().into_owned(), T::GROUP, T::VERSION, T::KIND));
}

fn fix_schema(name: &str, schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    match name {
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => {
            obj.remove("x-kubernetes-int-or-string");
            obj.insert("format".into(), json!("int-or-string"));
            obj.insert(
                "oneOf".into(),
                json!([{"type": "integer"}, {"type": "string"}]),
            );
        }
        "io.k8s.apimachinery.pkg.api.resource.Quantity" => {
            obj.remove("x-kubernetes-int-or-string");
            obj.insert(
                "oneOf".into(),
                json!([{"type": "string"}, {"type": "number"}]),
            );
        }
        _ => {}
    }
}

fn main() {
    use k8s_openapi::api::{
        admissionregistration, apps, authentication, authorization, autoscaling, batch,
        coordination, core, discovery, networking, rbac, storage,
    };

    let mut docs = Vec::new();
    // The kinds `src/resources.rs` serves, except the Gateway API kinds (not in k8s-openapi).
    // A kube-sim test checks every served built-in kind has its schema here.
    add::<core::v1::Namespace>(&mut docs);
    add::<core::v1::Pod>(&mut docs);
    add::<core::v1::Service>(&mut docs);
    add::<core::v1::Endpoints>(&mut docs);
    add::<core::v1::ConfigMap>(&mut docs);
    add::<core::v1::Secret>(&mut docs);
    add::<core::v1::Node>(&mut docs);
    add::<core::v1::Event>(&mut docs);
    add::<core::v1::ServiceAccount>(&mut docs);
    add::<core::v1::PersistentVolumeClaim>(&mut docs);
    add::<core::v1::PersistentVolume>(&mut docs);
    add::<apps::v1::Deployment>(&mut docs);
    add::<apps::v1::ReplicaSet>(&mut docs);
    add::<apps::v1::StatefulSet>(&mut docs);
    add::<apps::v1::DaemonSet>(&mut docs);
    add::<batch::v1::Job>(&mut docs);
    add::<batch::v1::CronJob>(&mut docs);
    add::<networking::v1::Ingress>(&mut docs);
    add::<networking::v1::IngressClass>(&mut docs);
    add::<networking::v1::NetworkPolicy>(&mut docs);
    add::<discovery::v1::EndpointSlice>(&mut docs);
    add::<autoscaling::v2::HorizontalPodAutoscaler>(&mut docs);
    add::<storage::v1::StorageClass>(&mut docs);
    add::<admissionregistration::v1::ValidatingWebhookConfiguration>(&mut docs);
    add::<admissionregistration::v1::MutatingWebhookConfiguration>(&mut docs);
    add::<rbac::v1::Role>(&mut docs);
    add::<rbac::v1::ClusterRole>(&mut docs);
    add::<rbac::v1::RoleBinding>(&mut docs);
    add::<rbac::v1::ClusterRoleBinding>(&mut docs);
    add::<coordination::v1::Lease>(&mut docs);
    add::<authentication::v1::SelfSubjectReview>(&mut docs);
    add::<authorization::v1::SelfSubjectAccessReview>(&mut docs);
    add::<authorization::v1::SelfSubjectRulesReview>(&mut docs);

    let mut out = Map::new();
    for mut doc in docs {
        let mut schemas = doc.generator.take_definitions(true);
        for (name, schema) in schemas.iter_mut() {
            fix_schema(name, schema);
        }
        for (name, group, version, kind) in &doc.kinds {
            let Some(obj) = schemas.get_mut(name).and_then(Value::as_object_mut) else {
                panic!("no schema generated for {name}");
            };
            obj.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": group, "kind": kind, "version": version}]),
            );
            if let Some(req) = obj.get_mut("required").and_then(Value::as_array_mut) {
                req.retain(|r| r != "metadata");
                if req.is_empty() {
                    obj.remove("required");
                }
            }
        }
        out.insert(doc.path, Value::Object(schemas));
    }

    let json = serde_json::to_vec(&Value::Object(out)).expect("serialize schemas");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR"))
        .join("openapi-schemas.json.gz");
    let file = std::fs::File::create(&dest).expect("create schemas file");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    gz.write_all(&json).expect("write schemas");
    gz.finish().expect("finish schemas");
    println!("cargo::rerun-if-changed=build.rs");
}
