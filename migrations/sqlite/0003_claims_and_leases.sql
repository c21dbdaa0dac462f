-- Who is working on an enquiry (claimed atomically, so two handlers never call the same
-- person), and leases that let one instance run a daily job for all.
ALTER TABLE enquiries ADD COLUMN claimed_by TEXT;
ALTER TABLE enquiries ADD COLUMN claimed_at TEXT;
CREATE INDEX enquiries_unclaimed ON enquiries (status, claimed_by, created_at);

CREATE TABLE job_leases (
    name        TEXT PRIMARY KEY NOT NULL,   -- e.g. bank-holiday-refresh
    holder      TEXT NOT NULL,               -- the instance holding it
    expires_at  TEXT NOT NULL
);
