-- Account changes are conditional on the version read (a stale copy never overwrites a
-- newer change, such as a disable); each sign-in attempt is recorded before it is checked
-- (so parallel guesses cannot slip past the limit) and forgiven by its token on success;
-- unanswered attempts are counted apart from calls that reached the caller.
ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE login_failures ADD COLUMN attempt TEXT;
ALTER TABLE enquiries ADD COLUMN unanswered INTEGER NOT NULL DEFAULT 0;
