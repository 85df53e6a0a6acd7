-- Console sessions signed in through the identity provider: when the person's ID token (the
-- identity the session holds) expires. Past it the session renews the identity with its sealed
-- refresh token, or ends.
ALTER TABLE console_sessions ADD COLUMN identity_expires_at BIGINT;
