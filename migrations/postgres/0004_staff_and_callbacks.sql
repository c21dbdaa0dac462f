-- Staff accounts, their sessions and sign-in failures, the append-only audit log, and the
-- life of an enquiry after it is logged: attempts to call back, notes, texts sent.
-- Mirrors migrations/sqlite/0004.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,      -- random UUID
    email               TEXT NOT NULL UNIQUE,           -- lower case
    role                TEXT NOT NULL CHECK (role IN ('handler', 'manager', 'admin')),
    phone               TEXT,                           -- the handler's own phone (E.164), rung for call-backs
    password_hash       TEXT,                           -- argon2id PHC string; NULL until set up
    totp_secret         TEXT,                           -- base32; NULL until the second factor is enrolled
    totp_last_step      BIGINT,                         -- the last time step used: a code works once
    disabled            BOOLEAN NOT NULL DEFAULT FALSE,
    setup_token_hash    TEXT UNIQUE,                    -- SHA-256 of the one-time set-up link's token
    setup_expires_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE recovery_codes (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   TEXT NOT NULL,                          -- SHA-256 of a random one-time code
    used_at TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE sessions (
    id_hash         TEXT PRIMARY KEY,          -- SHA-256 of the cookie's random value
    user_id         TEXT REFERENCES users (id) ON DELETE CASCADE, -- NULL before sign-in
    stage           TEXT NOT NULL,                      -- anonymous, second-factor, enrol, signed-in
    csrf            TEXT NOT NULL,                      -- the token every form and API write must carry
    pending_secret  TEXT,                               -- a second-factor secret being enrolled
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL                       -- the absolute end
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_failures (
    scope   TEXT NOT NULL,                              -- account or address
    key     TEXT NOT NULL,                              -- SHA-256 of the e-mail or the address
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (scope, key, at);

CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    actor_id    TEXT,                                   -- the staff member, when known
    actor       TEXT NOT NULL,                          -- their e-mail, or 'system' / 'unknown'
    action      TEXT NOT NULL,                          -- e.g. number.revealed, login.failed
    target      TEXT,                                   -- an enquiry or user id: never a caller's details
    address     TEXT,                                   -- the source address
    detail      TEXT                                    -- e.g. the outcome recorded; never personal data
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

ALTER TABLE enquiries ADD COLUMN source TEXT NOT NULL DEFAULT 'callback-request'; -- or missed-in-queue
ALTER TABLE enquiries ADD COLUMN waiting_since TIMESTAMPTZ;    -- when the caller first asked (joined the queue, for those who left it)
ALTER TABLE enquiries ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE enquiries ADD COLUMN next_attempt_on DATE;  -- Europe/London date of the next try after no answer
ALTER TABLE enquiries ADD COLUMN closed_at TIMESTAMPTZ;
ALTER TABLE enquiries ADD COLUMN missed_calls BIGINT NOT NULL DEFAULT 0; -- later queue hang-ups merged into this one
CREATE INDEX enquiries_callback_number ON enquiries (callback_number, status);

CREATE TABLE callback_attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enquiry_id  TEXT NOT NULL REFERENCES enquiries (id) ON DELETE CASCADE,
    handler_id  TEXT NOT NULL REFERENCES users (id),
    at TIMESTAMPTZ NOT NULL,
    outcome     TEXT NOT NULL                           -- resolved, follow-up, no-answer, voicemail, wrong-number
);
CREATE INDEX callback_attempts_enquiry ON callback_attempts (enquiry_id, at);

CREATE TABLE enquiry_notes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enquiry_id  TEXT NOT NULL REFERENCES enquiries (id) ON DELETE CASCADE,
    author_id   TEXT NOT NULL REFERENCES users (id),
    at TIMESTAMPTZ NOT NULL,
    body        TEXT NOT NULL
);

CREATE TABLE texts_sent (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enquiry_id  TEXT NOT NULL REFERENCES enquiries (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,                          -- reference, unreachable
    at TIMESTAMPTZ NOT NULL,
    status      TEXT NOT NULL,                          -- sent, failed
    message_sid TEXT,
    UNIQUE (enquiry_id, kind)
);
