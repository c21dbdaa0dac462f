-- Retention (issue 7): enquiries closed, and calls without an enquiry started, more than
-- HELPLINE_RETENTION_DAYS ago are deleted by `helpline purge` (and daily by `serve`). Their
-- recordings at Twilio are listed here, in the purge's transaction, and each stays listed
-- until Twilio confirms it gone (204, or 404 when it already was), so a failed delete is
-- tried again at the next purge. Holds a recording's URL only: no number, no words.
CREATE TABLE recording_deletions (
    recording_url    TEXT PRIMARY KEY NOT NULL,   -- as Twilio gave it (RecordingUrl), or a bare RE… SID
    queued_at        TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,  -- failed tries so far
    last_attempt_at  TEXT,
    last_error       TEXT                         -- e.g. `HTTP 503`, `timeout`: never Twilio's message
);

-- What the purge looks enquiries up by, and what deleting an enquiry's notes reads.
CREATE INDEX enquiries_closed_at ON enquiries (closed_at);
CREATE INDEX enquiry_notes_enquiry ON enquiry_notes (enquiry_id);
