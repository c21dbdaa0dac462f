-- Mirrors migrations/sqlite/0009: recordings waiting for Twilio to confirm their deletion
-- after the retention purge, and the indexes the purge reads through.
CREATE TABLE recording_deletions (
    recording_url    TEXT PRIMARY KEY,
    queued_at        TIMESTAMPTZ NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_attempt_at  TIMESTAMPTZ,
    last_error       TEXT
);

CREATE INDEX enquiries_closed_at ON enquiries (closed_at);
CREATE INDEX enquiry_notes_enquiry ON enquiry_notes (enquiry_id);
