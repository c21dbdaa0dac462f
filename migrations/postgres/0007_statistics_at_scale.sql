-- Mirrors migrations/sqlite/0007.
ALTER TABLE calls ADD COLUMN test_call BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE enquiries ADD COLUMN not_counted BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE enquiries SET not_counted = COALESCE((SELECT c.simulated FROM calls c WHERE c.call_sid = enquiries.call_sid), FALSE);

ALTER TABLE enquiries ADD COLUMN repeat_requests INTEGER NOT NULL DEFAULT 0;
CREATE TABLE enquiry_calls (
    call_sid    TEXT PRIMARY KEY NOT NULL,
    enquiry_id  TEXT NOT NULL REFERENCES enquiries (id) ON DELETE CASCADE,
    at          TIMESTAMPTZ NOT NULL
);

ALTER TABLE enquiries ADD COLUMN first_attempt_at TIMESTAMPTZ;
ALTER TABLE enquiries ADD COLUMN first_attempt_on DATE;
ALTER TABLE enquiries ADD COLUMN first_attempt_minutes BIGINT;
UPDATE enquiries SET first_attempt_at = (SELECT MIN(a.at) FROM callback_attempts a WHERE a.enquiry_id = enquiries.id);
CREATE INDEX enquiries_first_attempt_pending ON enquiries (first_attempt_at) WHERE first_attempt_minutes IS NULL AND first_attempt_at IS NOT NULL;

CREATE INDEX enquiries_figures ON enquiries (created_at, not_counted, status, trust, category, source,
    attempts, first_attempt_on, callback_due, first_attempt_minutes);
CREATE INDEX callback_attempts_at ON callback_attempts (at, outcome);
CREATE INDEX calls_hung_up_in_queue ON calls (started_at) WHERE queue_result = 'hangup';

CREATE TABLE stats_days (
    day          DATE PRIMARY KEY NOT NULL,
    version      INTEGER NOT NULL,
    computed_at  TIMESTAMPTZ NOT NULL,
    watermark    TIMESTAMPTZ,
    figures      TEXT NOT NULL
);
