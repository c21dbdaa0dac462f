-- Mirrors migrations/sqlite/0005, and closes TRUNCATE on the append-only audit log.
ALTER TABLE users ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE login_failures ADD COLUMN attempt TEXT;
ALTER TABLE enquiries ADD COLUMN unanswered BIGINT NOT NULL DEFAULT 0;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
