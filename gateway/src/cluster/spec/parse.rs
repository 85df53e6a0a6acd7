//! Parsing kubeconfig text, with errors that say where and what kind of problem, never the
//! text itself.

use kube::config::{Kubeconfig, KubeconfigError};

use super::{Result, SpecError};

/// Parses kubeconfig text. A parse error says where and what kind of problem, never the text
/// itself (a kubeconfig holds tokens and keys, and the message goes to API clients and logs).
pub fn parse_kubeconfig(text: &str) -> Result<Kubeconfig> {
    let config =
        Kubeconfig::from_yaml(text).map_err(|e| SpecError::Malformed(describe_parse_error(&e)))?;
    if config.clusters.is_empty() && config.contexts.is_empty() {
        return Err(SpecError::Malformed(
            "no clusters and no contexts: is this a kubeconfig?".to_owned(),
        ));
    }
    Ok(config)
}

fn describe_parse_error(error: &KubeconfigError) -> String {
    match error {
        KubeconfigError::Parse(error) => describe_yaml_error(error),
        // Merging the documents of a multi-document file: fixed texts.
        KubeconfigError::KindMismatch | KubeconfigError::ApiVersionMismatch => error.to_string(),
        _ => "not a kubeconfig".to_owned(),
    }
}

/// The kind and position of a YAML error. Every arm uses only what the schema or the parser
/// defines (expected types, field names), never a scalar from the input.
fn describe_yaml_error(error: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    let mut error = error.without_snippet();
    if let E::AliasError { error: inner, .. } = error {
        error = inner.without_snippet();
    }
    let what = match error {
        E::ExternalMessage { .. } => "YAML syntax error".to_owned(),
        E::Eof { .. } => "unexpected end of the document".to_owned(),
        E::SerdeInvalidType { expected, .. } => {
            format!("value of the wrong type (expected {expected})")
        }
        E::SerdeInvalidValue { expected, .. } => format!("invalid value (expected {expected})"),
        E::SerdeInvalidLength { expected, .. } => {
            format!("wrong number of elements (expected {expected})")
        }
        E::SerdeUnknownVariant { expected, .. } => {
            format!("unknown variant (expected one of: {})", expected.join(", "))
        }
        E::SerdeUnknownField { .. } => "unknown field".to_owned(),
        E::SerdeMissingField { field, .. } => format!("missing field `{field}`"),
        E::DuplicateMappingKey { .. } => "duplicate key".to_owned(),
        E::Unexpected { expected, .. } => format!("value of the wrong type (expected {expected})"),
        E::NullIntoString { .. } => "null where text is expected".to_owned(),
        E::InvalidScalar { ty, .. } => format!("value that is not a valid {ty}"),
        E::InvalidUtf8Input => "input that is not UTF-8".to_owned(),
        E::UnknownAnchor { .. } => "alias of an unknown anchor".to_owned(),
        E::Budget { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => {
            "document too large or too deeply nested".to_owned()
        }
        _ => "invalid YAML or not a kubeconfig".to_owned(),
    };
    match error.location() {
        Some(at) if at.line() > 0 => {
            format!("{what} at line {}, column {}", at.line(), at.column())
        }
        _ => what,
    }
}
