-- The audit log also records refused proxied requests and admin API changes.
ALTER TABLE audit_log ADD COLUMN kind TEXT NOT NULL DEFAULT 'proxy';
ALTER TABLE audit_log ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_log_kind_at ON audit_log (kind, at);
