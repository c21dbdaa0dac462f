-- Closures and special openings, the last good bank-holiday calendar, and a revision
-- number bumped by every change to either, so each instance knows when to reload.

CREATE TABLE closures (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL CHECK (kind IN ('closed', 'open')),  -- closed: a closure; open: a special opening
    starts_at   TEXT NOT NULL,
    ends_at     TEXT NOT NULL,
    reason      TEXT NOT NULL,                                     -- spoken to callers for a closure
    created_at  TEXT NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX closures_ends_at ON closures (ends_at);

CREATE TABLE bank_holiday_calendars (
    division        TEXT PRIMARY KEY NOT NULL,   -- england-and-wales, scotland, northern-ireland
    document        TEXT NOT NULL,               -- the calendar in force, GOV.UK JSON shape
    source          TEXT NOT NULL,               -- where it came from
    fetched_at      TEXT NOT NULL,               -- when that copy was fetched
    checked_at      TEXT NOT NULL,               -- the last successful check of the feed (a 304 counts)
    etag            TEXT,
    last_modified   TEXT
);

CREATE TABLE hours_revision (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    revision    INTEGER NOT NULL
);
INSERT INTO hours_revision (id, revision) VALUES (1, 0);
