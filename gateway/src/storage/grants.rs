//! Grants for people and groups from the identity provider (`subject_grants`).

use sqlx::FromRow;

use super::{Db, Result, StorageError};
use crate::records::auth::{PersonAccess, Subject, SubjectGrant, SubjectKind};

#[derive(FromRow)]
struct GrantRow {
    id: String,
    subject_kind: String,
    subject_name: String,
    cluster: Option<String>,
    selector: Option<String>,
    access: String,
    impersonate: String,
    created_at: i64,
}

macro_rules! grant_columns {
    () => {
        "id, subject_kind, subject_name, cluster, selector, access, impersonate, created_at"
    };
}

impl TryFrom<GrantRow> for SubjectGrant {
    type Error = StorageError;

    fn try_from(row: GrantRow) -> Result<Self> {
        let corrupt =
            |what: &str| StorageError::Corrupt(format!("subject_grants.{what} of {}", row.id));
        let kind: SubjectKind = row
            .subject_kind
            .parse()
            .map_err(|_| corrupt("subject_kind"))?;
        let access: PersonAccess = row.access.parse().map_err(|_| corrupt("access"))?;
        let impersonate = match row.impersonate.as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(corrupt("impersonate")),
        };
        if row.cluster.is_some() == row.selector.is_some() {
            return Err(corrupt("cluster"));
        }
        Ok(SubjectGrant {
            id: row.id,
            subject: Subject {
                kind,
                name: row.subject_name,
            },
            cluster: row.cluster,
            selector: row.selector,
            access,
            impersonate,
            created_at: row.created_at,
        })
    }
}

impl Db {
    /// Stores a new grant for a person or group.
    pub async fn insert_subject_grant(&self, grant: &SubjectGrant) -> Result<()> {
        sqlx::query(
            "INSERT INTO subject_grants (id, subject_kind, subject_name, cluster, selector, \
             access, impersonate, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&grant.id)
        .bind(grant.subject.kind.as_str())
        .bind(&grant.subject.name)
        .bind(&grant.cluster)
        .bind(&grant.selector)
        .bind(grant.access.as_str())
        .bind(if grant.impersonate { "true" } else { "false" })
        .bind(grant.created_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every grant for people and groups, oldest first.
    pub async fn subject_grants(&self) -> Result<Vec<SubjectGrant>> {
        const SQL: &str = concat!(
            "SELECT ",
            grant_columns!(),
            " FROM subject_grants ORDER BY created_at, id"
        );
        let rows: Vec<GrantRow> = sqlx::query_as(SQL).fetch_all(self.pool()).await?;
        rows.into_iter().map(SubjectGrant::try_from).collect()
    }

    /// Deletes a grant; returns whether it existed.
    pub async fn delete_subject_grant(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM subject_grants WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
