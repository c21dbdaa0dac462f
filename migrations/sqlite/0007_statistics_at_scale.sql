-- Statistics at scale (issue 6): the first call-back attempt kept on the enquiry, a
-- not-counted flag on enquiries, daily roll-ups of the call figures, and indexes for the
-- figures that are read live.

-- Calls from the staff's test numbers (HELPLINE_TEST_NUMBERS): served like any other call,
-- never counted in statistics (as simulated calls are not).
ALTER TABLE calls ADD COLUMN test_call INTEGER NOT NULL DEFAULT 0;

-- Enquiries from simulated or test calls (copied from their call): never counted.
ALTER TABLE enquiries ADD COLUMN not_counted INTEGER NOT NULL DEFAULT 0;
UPDATE enquiries SET not_counted = COALESCE((SELECT c.simulated FROM calls c WHERE c.call_sid = enquiries.call_sid), 0);

-- A number that already has the most open enquiries allowed (HELPLINE_MAX_OPEN_PER_NUMBER)
-- gets no new one: the call's request is folded into the oldest open one, counted there,
-- and remembered here so that a retried webhook gets the same answer.
ALTER TABLE enquiries ADD COLUMN repeat_requests INTEGER NOT NULL DEFAULT 0;
CREATE TABLE enquiry_calls (
    call_sid    TEXT PRIMARY KEY NOT NULL,
    enquiry_id  TEXT NOT NULL REFERENCES enquiries (id) ON DELETE CASCADE,
    at          TEXT NOT NULL
);

-- The first call-back attempt: its time, its Europe/London date, and the working minutes
-- the caller had waited for it (filled in by the statistics from the calendar).
ALTER TABLE enquiries ADD COLUMN first_attempt_at TEXT;
ALTER TABLE enquiries ADD COLUMN first_attempt_on TEXT;
ALTER TABLE enquiries ADD COLUMN first_attempt_minutes INTEGER;
UPDATE enquiries SET first_attempt_at = (SELECT MIN(a.at) FROM callback_attempts a WHERE a.enquiry_id = enquiries.id);
CREATE INDEX enquiries_first_attempt_pending ON enquiries (first_attempt_at) WHERE first_attempt_minutes IS NULL AND first_attempt_at IS NOT NULL;

-- Covering indexes: the figures are counted from the index alone.
CREATE INDEX enquiries_figures ON enquiries (created_at, not_counted, status, trust, category, source,
    attempts, first_attempt_on, callback_due, first_attempt_minutes);
CREATE INDEX callback_attempts_at ON callback_attempts (at, outcome);
CREATE INDEX calls_hung_up_in_queue ON calls (started_at) WHERE queue_result = 'hangup';

-- The call figures of one Europe/London day: JSON in the format of
-- `stats::rollup::DayFigures` at `version` (another version is recomputed from the calls).
-- Once every call of the day has ended, `watermark` is NULL and the figures are final;
-- before, they are of the day's calls that ended before `watermark`. No personal data.
CREATE TABLE stats_days (
    day          TEXT PRIMARY KEY NOT NULL,
    version      INTEGER NOT NULL,
    computed_at  TEXT NOT NULL,
    watermark    TEXT,
    figures      TEXT NOT NULL
);
