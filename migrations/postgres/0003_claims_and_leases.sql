-- Who is working on an enquiry (claimed atomically, so two handlers never call the same
-- person), and leases that let one instance run a daily job for all. Mirrors sqlite/0003.
ALTER TABLE enquiries ADD COLUMN claimed_by TEXT;
ALTER TABLE enquiries ADD COLUMN claimed_at TIMESTAMPTZ;
CREATE INDEX enquiries_unclaimed ON enquiries (status, claimed_by, created_at);

CREATE TABLE job_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
