//! `Status` objects: the error bodies the apiserver sends, formatted exactly as it does.

use serde::Serialize;
use serde_json::Value;

use crate::resources::ResourceInfo;

/// One cause in `details.causes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusCause {
    /// Machine-readable reason (`FieldValueInvalid`, `ExitCode`, …); serialised as `reason`.
    #[serde(rename = "reason", skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable message.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The field the cause is about, as a path (`metadata.resourceVersion`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// `details` of a `Status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatusDetails {
    /// Name of the object the status is about.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// API group of the resource (empty for the core group, then left out).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The apiserver puts the *resource* (plural) here, not the kind.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// UID of the object, when known.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Causes, for `Invalid` errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    /// Seconds after which a retry may succeed (`TooManyRequests`, `Timeout`).
    #[serde(rename = "retryAfterSeconds", skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
}

/// An error as the apiserver reports it: an HTTP code and a `Status` body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code, repeated in the body's `code`.
    pub code: u16,
    /// `reason` (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, …); may be empty.
    pub reason: String,
    /// `message`.
    pub message: String,
    /// `details`: left out when `None`, `{}` when empty (boxed: errors stay small).
    pub details: Option<Box<StatusDetails>>,
}

#[derive(Serialize)]
struct StatusBody<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: serde_json::Map<String, Value>,
    status: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a StatusDetails>,
    code: u16,
}

/// Result of an API operation.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

fn details_for(res: &ResourceInfo, name: &str) -> StatusDetails {
    StatusDetails {
        name: name.to_string(),
        group: res.group.to_string(),
        kind: res.plural.to_string(),
        ..StatusDetails::default()
    }
}

impl ApiError {
    /// A bare error with a code, reason and message.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    /// The `Status` object serialised with the apiserver's field order.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body()).expect("status serialises")
    }

    fn body(&self) -> StatusBody<'_> {
        StatusBody {
            kind: "Status",
            api_version: "v1",
            metadata: serde_json::Map::new(),
            status: "Failure",
            message: &self.message,
            reason: &self.reason,
            details: self.details.as_deref(),
            code: self.code,
        }
    }

    /// The `Status` object as JSON.
    pub fn to_status(&self) -> Value {
        serde_json::to_value(self.body()).expect("status serialises")
    }

    /// 404 `NotFound` for a named object: `pods "x" not found`.
    pub fn not_found(res: &ResourceInfo, name: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound".into(),
            message: format!("{} \"{name}\" not found", res.qualified()),
            details: Some(Box::new(details_for(res, name))),
        }
    }

    /// 404 for a path the server does not serve.
    pub fn no_such_resource() -> Self {
        Self {
            details: Some(Box::default()),
            ..Self::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }

    /// 409 `AlreadyExists`.
    pub fn already_exists(res: &ResourceInfo, name: &str) -> Self {
        Self {
            code: 409,
            reason: "AlreadyExists".into(),
            message: format!("{} \"{name}\" already exists", res.qualified()),
            details: Some(Box::new(details_for(res, name))),
        }
    }

    /// 409 `Conflict` with the apiserver's wording around `why`.
    pub fn conflict(res: &ResourceInfo, name: &str, why: &str) -> Self {
        Self {
            code: 409,
            reason: "Conflict".into(),
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                res.qualified()
            ),
            details: Some(Box::new(details_for(res, name))),
        }
    }

    /// 409 `Conflict` for a stale `resourceVersion`.
    pub fn stale(res: &ResourceInfo, name: &str) -> Self {
        Self::conflict(
            res,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 `Invalid` with one field cause. `kind` is the Kind (`Pod`) or, as the apiserver does
    /// for some checks, the qualified resource.
    pub fn invalid(res: &ResourceInfo, kind: &str, name: &str, causes: Vec<StatusCause>) -> Self {
        let list = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect::<Vec<_>>();
        let joined = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let qualified = if res.group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{}", res.group)
        };
        Self {
            code: 422,
            reason: "Invalid".into(),
            message: format!("{qualified} \"{name}\" is invalid: {joined}"),
            details: Some(Box::new(StatusDetails {
                causes,
                ..details_for(res, name)
            })),
        }
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 405 `MethodNotAllowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 401 `Unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 410 `Expired` (HTTP 410 Gone).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415 `UnsupportedMediaType`.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type})"
            ),
        )
    }

    /// 500 `InternalError`.
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code: 500,
            reason: "InternalError".into(),
            message: format!("Internal error occurred: {message}"),
            details: Some(Box::new(StatusDetails {
                causes: vec![StatusCause {
                    reason: String::new(),
                    message,
                    field: String::new(),
                }],
                ..StatusDetails::default()
            })),
        }
    }

    /// The error the apiserver would send for an HTTP code, used by fault injection.
    pub fn for_code(code: u16) -> Self {
        match code {
            400 => Self::bad_request("injected fault"),
            401 => Self::unauthorized(),
            403 => Self::new(403, "Forbidden", "forbidden: injected fault"),
            404 => Self::no_such_resource(),
            409 => Self::new(409, "Conflict", "injected fault"),
            410 => Self::expired("injected fault"),
            429 => Self {
                details: Some(Box::new(StatusDetails {
                    retry_after_seconds: Some(1),
                    ..StatusDetails::default()
                })),
                ..Self::new(
                    429,
                    "TooManyRequests",
                    "the server has received too many requests and has asked us to try again later",
                )
            },
            500 => Self::internal("injected fault"),
            503 => Self::new(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => Self::new(
                504,
                "Timeout",
                "the server was unable to return a response in the time allotted, but may still be processing the request",
            ),
            other => Self::new(other, "", format!("injected fault ({other})")),
        }
    }
}

/// The `Status` that successful deletes of most kinds return.
pub fn success(res: &ResourceInfo, name: &str, uid: &str) -> Value {
    let mut details = serde_json::Map::new();
    details.insert("name".into(), name.into());
    if !res.group.is_empty() {
        details.insert("group".into(), res.group.into());
    }
    details.insert("kind".into(), res.plural.into());
    if !uid.is_empty() {
        details.insert("uid".into(), uid.into());
    }
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}
