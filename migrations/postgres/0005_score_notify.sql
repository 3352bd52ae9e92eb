-- Every change to the score history, by a host or behind the hosts' backs,
-- notifies `vigil_scores` with the table's schema and the accounts the
-- statement touched, as {"schema": …, "accounts": […]} — `accounts` null
-- for all of them (a truncate, or more accounts than a notification's 8000
-- bytes hold): each host using that schema drops those accounts from its
-- latest-score cache. One notification per statement; a statement that
-- changed no row sends none.
CREATE FUNCTION vigil_scores_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    accounts json;
    payload text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT json_agg(DISTINCT account_id) INTO accounts FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT json_agg(DISTINCT account_id) INTO accounts
        FROM (SELECT account_id FROM old_rows UNION ALL SELECT account_id FROM new_rows) AS changed;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT json_agg(DISTINCT account_id) INTO accounts FROM old_rows;
    END IF;
    IF TG_OP <> 'TRUNCATE' AND accounts IS NULL THEN
        RETURN NULL;
    END IF;
    payload := json_build_object('schema', TG_TABLE_SCHEMA, 'accounts', accounts)::text;
    IF octet_length(payload) > 7000 THEN
        payload := json_build_object('schema', TG_TABLE_SCHEMA, 'accounts', NULL)::text;
    END IF;
    PERFORM pg_notify('vigil_scores', payload);
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
