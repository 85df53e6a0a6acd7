//! Console sessions.

/// Who a console session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSubject {
    /// Signed in with a Portico token (its id; the token itself is sealed in the row).
    Token { token_id: String },
    /// Signed in through the identity provider: the person as the provider asserted them.
    Person {
        username: String,
        groups: Vec<String>,
        /// Unix milliseconds: the `exp` of the ID token that asserted them. Past it the
        /// session renews the identity with its refresh token (the sealed secret), or ends.
        identity_expires_at: i64,
    },
}

/// A stored console session (the browser holds the id; the database its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub id_hash: String,
    pub subject: SessionSubject,
    /// The sign-in credential, sealed with the secret key (bound to `id_hash`): the Portico
    /// token of a token session, the refresh token of a person's session.
    pub sealed_secret: Option<Vec<u8>>,
    pub csrf: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
}
