-- Every change to the score history, by a host or behind the hosts' backs,
-- notifies `vigil_scores` with the accounts it touched (a JSON array), or
-- `*` for all of them (a truncate, or more accounts than a notification's
-- 8000 bytes hold): each host drops those accounts from its latest-score
-- cache. One notification per statement; a statement that changed no row
-- sends none.
CREATE FUNCTION vigil_scores_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    accounts text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT json_agg(DISTINCT account_id)::text INTO accounts FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT json_agg(DISTINCT account_id)::text INTO accounts
        FROM (SELECT account_id FROM old_rows UNION ALL SELECT account_id FROM new_rows) AS changed;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT json_agg(DISTINCT account_id)::text INTO accounts FROM old_rows;
    ELSE
        accounts := '*';
    END IF;
    IF accounts IS NULL THEN
        RETURN NULL;
    END IF;
    IF octet_length(accounts) > 7000 THEN
        accounts := '*';
    END IF;
    PERFORM pg_notify('vigil_scores', accounts);
    RETURN NULL;
END
$$;
-- A trigger with transition tables takes one kind of statement.
CREATE TRIGGER scores_inserted AFTER INSERT ON scores
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_scores_changed();
CREATE TRIGGER scores_updated AFTER UPDATE ON scores
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_scores_changed();
CREATE TRIGGER scores_deleted AFTER DELETE ON scores
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_scores_changed();
CREATE TRIGGER scores_truncated AFTER TRUNCATE ON scores
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_scores_changed();
