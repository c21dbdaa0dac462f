-- Calls, the steps callers take through the menus, answers gathered mid-call,
-- and enquiries (requests for a call back). Times are UTC, RFC 3339 text.

CREATE TABLE calls (
    call_sid            TEXT PRIMARY KEY NOT NULL,
    caller              TEXT,                         -- as Twilio gave it: E.164, 'anonymous', 'unknown'
    started_at          TEXT NOT NULL,
    in_hours            INTEGER NOT NULL,             -- 1 when the line was open as the call began
    simulated           INTEGER NOT NULL DEFAULT 0,   -- from `helpline simulate`: never counted in statistics
    ended_at            TEXT,
    duration_seconds    INTEGER,
    final_status        TEXT,                         -- Twilio CallStatus at the end: completed, busy, no-answer, failed, canceled
    queue_joined_at     TEXT,                         -- first time the caller joined the adviser queue
    queue_left_at       TEXT,
    queue_result        TEXT,                         -- Twilio QueueResult: bridged, leave, hangup, queue-full, error…
    queue_wait_seconds  INTEGER,
    hung_up_in_queue    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX calls_started_at ON calls (started_at);

CREATE TABLE call_steps (
    call_sid    TEXT NOT NULL REFERENCES calls (call_sid) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,                     -- position in the call; a retried webhook repeats its seq
    node        TEXT NOT NULL,                        -- the flow node that took the input
    input       TEXT NOT NULL,                        -- none, dtmf, speech, recording, queue, start
    outcome     TEXT NOT NULL,                        -- option-3, invalid, no-input, gave-up… never what was said or keyed
    at          TEXT NOT NULL,
    PRIMARY KEY (call_sid, seq)
);

CREATE TABLE call_answers (
    call_sid    TEXT NOT NULL REFERENCES calls (call_sid) ON DELETE CASCADE,
    name        TEXT NOT NULL,                        -- callback_number, trust, category, recording_url, recording_duration
    value       TEXT NOT NULL,
    PRIMARY KEY (call_sid, name)
);

CREATE TABLE enquiries (
    id                  TEXT PRIMARY KEY NOT NULL,    -- random UUID: the id used in URLs, never guessable
    reference           TEXT NOT NULL UNIQUE,         -- the six digits the caller was given
    call_sid            TEXT NOT NULL UNIQUE,         -- one enquiry per call, however often Twilio retries
    callback_number     TEXT NOT NULL,                -- E.164
    trust               TEXT NOT NULL,
    category            TEXT NOT NULL,
    recording_url       TEXT,
    recording_duration  INTEGER,
    status              TEXT NOT NULL DEFAULT 'new',
    created_at          TEXT NOT NULL,
    callback_due        TEXT NOT NULL                 -- Europe/London date promised to the caller
);
CREATE INDEX enquiries_status_created ON enquiries (status, created_at);
