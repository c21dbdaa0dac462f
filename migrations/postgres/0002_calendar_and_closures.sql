-- Closures and special openings, the last good bank-holiday calendar, and the revision
-- number every change bumps. Mirrors migrations/sqlite/0002.

CREATE TABLE closures (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('closed', 'open')),
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ NOT NULL,
    reason      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX closures_ends_at ON closures (ends_at);

CREATE TABLE bank_holiday_calendars (
    division        TEXT PRIMARY KEY,
    document        TEXT NOT NULL,
    source          TEXT NOT NULL,
    fetched_at      TIMESTAMPTZ NOT NULL,
    checked_at      TIMESTAMPTZ NOT NULL,
    etag            TEXT,
    last_modified   TEXT
);

CREATE TABLE hours_revision (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    revision    BIGINT NOT NULL
);
INSERT INTO hours_revision (id, revision) VALUES (1, 0);
