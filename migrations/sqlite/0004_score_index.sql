-- The latest score, and the newest one at least 7/30/90 days older, are
-- read ordered by (computed_at, seq). With seq in the index, each is the
-- first entry of a backward index scan; without it the database read every
-- row of the range and sorted them, so a read grew with the history. The
-- old index is a prefix of the new one, so it goes.
CREATE INDEX scores_account_latest ON scores (account_id, name, computed_at, seq);
DROP INDEX scores_account;
