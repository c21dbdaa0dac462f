-- Calls, the steps callers take through the menus, answers gathered mid-call,
-- and enquiries (requests for a call back). Mirrors migrations/sqlite/0001.

CREATE TABLE calls (
    call_sid            TEXT PRIMARY KEY,
    caller              TEXT,                          -- as Twilio gave it: E.164, 'anonymous', 'unknown'
    started_at          TIMESTAMPTZ NOT NULL,
    in_hours            BOOLEAN NOT NULL,              -- the line was open as the call began
    simulated           BOOLEAN NOT NULL DEFAULT FALSE,-- from `helpline simulate`: never counted in statistics
    ended_at            TIMESTAMPTZ,
    duration_seconds    BIGINT,
    final_status        TEXT,
    queue_joined_at     TIMESTAMPTZ,
    queue_left_at       TIMESTAMPTZ,
    queue_result        TEXT,
    queue_wait_seconds  BIGINT,
    hung_up_in_queue    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX calls_started_at ON calls (started_at);

CREATE TABLE call_steps (
    call_sid    TEXT NOT NULL REFERENCES calls (call_sid) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    node        TEXT NOT NULL,
    input       TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (call_sid, seq)
);

CREATE TABLE call_answers (
    call_sid    TEXT NOT NULL REFERENCES calls (call_sid) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (call_sid, name)
);

CREATE TABLE enquiries (
    id                  TEXT PRIMARY KEY,              -- random UUID: the id used in URLs, never guessable
    reference           TEXT NOT NULL UNIQUE,
    call_sid            TEXT NOT NULL UNIQUE,
    callback_number     TEXT NOT NULL,
    trust               TEXT NOT NULL,
    category            TEXT NOT NULL,
    recording_url       TEXT,
    recording_duration  BIGINT,
    status              TEXT NOT NULL DEFAULT 'new',
    created_at          TIMESTAMPTZ NOT NULL,
    callback_due        DATE NOT NULL
);
CREATE INDEX enquiries_status_created ON enquiries (status, created_at);
