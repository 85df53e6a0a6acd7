//! Tokens, their roles and grants.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A token's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: tokens, clusters, plugins, jobs, and write access to every cluster.
    Admin,
    /// Only what the token's grants allow.
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "user" => Ok(Self::User),
            other => Err(format!("unknown role `{other}` (expected admin or user)")),
        }
    }
}

/// Access to one cluster (or `*`). `Write` includes `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Write,
}

/// A grant of access to a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// A cluster id, or `*` for every cluster.
    pub cluster: String,
    pub access: Access,
    /// Send `Impersonate-User`/`Impersonate-Group` for the token's user so that the cluster's
    /// own RBAC decides.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub impersonate: bool,
}

/// A stored API token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub grants: Vec<Grant>,
    /// The Kubernetes user impersonated by grants with `impersonate` (default: the name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impersonate_user: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub impersonate_groups: Vec<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; `None` never expires.
    pub expires_at: Option<i64>,
}

/// Who a grant for people applies to: one OIDC user or every member of an OIDC group, named as
/// the gateway sees them (after `--oidc-username-prefix` / `--oidc-groups-prefix`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub kind: SubjectKind,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    User,
    Group,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
        }
    }
}

impl FromStr for SubjectKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Self::User),
            "group" => Ok(Self::Group),
            other => Err(format!(
                "unknown subject kind `{other}` (expected user or group)"
            )),
        }
    }
}

/// What a grant for people allows. `Admin` on every cluster (`*`) is the Portico admin role;
/// on one cluster or a label selector it is write access there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersonAccess {
    Read,
    Write,
    Admin,
}

impl PersonAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    /// The access to a cluster this grants.
    pub fn cluster_access(self) -> Access {
        match self {
            Self::Read => Access::Read,
            Self::Write | Self::Admin => Access::Write,
        }
    }
}

impl FromStr for PersonAccess {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "unknown access `{other}` (expected read, write or admin)"
            )),
        }
    }
}

/// A grant whose subject is a person or a group from the identity provider. Exactly one of
/// `cluster` (an id, or `*` for every cluster) and `selector` (cluster labels) is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectGrant {
    pub id: String,
    pub subject: Subject,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    pub access: PersonAccess,
    /// Send `Impersonate-User`/`Impersonate-Group` with the person's name and groups.
    pub impersonate: bool,
    /// Unix milliseconds.
    pub created_at: i64,
}
