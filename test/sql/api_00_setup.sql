--
-- api_00_setup: install pg_trickle and define the helpers every later
-- regression test uses.  pg_regress runs the tests alphabetically in one
-- database, so this file must run first.
--
--   pgt_check(st)       the oracle: 'ok' if the stream table holds exactly
--                       the rows of a fresh run of its defining query
--   pgt_refresh_report(st)  refreshes st; the action recorded, the reason for
--                       a FULL refresh, rows inserted and deleted, pgt_check
--   pgt_catalog(st)     the stream table's catalog row, one field a line,
--                       without the columns that vary between runs
--   pgt_census()        counts of the objects a failed call could leave
--                       behind
--   pgt_try(sql)        runs sql; on error, returns its SQLSTATE, message,
--                       detail and hint, and whether anything was left behind
--
CREATE EXTENSION pg_trickle;

SELECT extname, extversion, extnamespace::regnamespace AS schema
  FROM pg_extension WHERE extname = 'pg_trickle';

-- The oracle.  Rows are compared as the text of the whole row, so every
-- column type works (json has no equality operator), NULLs compare equal
-- to NULLs, and duplicates count (EXCEPT ALL).
CREATE FUNCTION public.pgt_check(st regclass) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    q        text;
    cols     text;
    n_extra  bigint;
    n_miss   bigint;
    extra    text;
    miss     text;
BEGIN
    SELECT s.defining_query INTO q
      FROM pgtrickle.pgt_stream_tables s WHERE s.pgt_relid = st;
    IF q IS NULL THEN
        RETURN format('%s is not a stream table', st);
    END IF;

    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) INTO cols
      FROM pg_attribute a
     WHERE a.attrelid = st AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname NOT LIKE '\_\_pgt\_%';

    -- rows in the stream table that the query does not produce
    EXECUTE format(
        'SELECT count(*), string_agg(r, '' '' ORDER BY r) FILTER (WHERE n <= 3)
           FROM (SELECT r, row_number() OVER (ORDER BY r) AS n
                   FROM (SELECT t::text AS r FROM (SELECT %s FROM %s) t
                         EXCEPT ALL
                         SELECT q::text FROM (%s) q) d) d2',
        cols, st, q) INTO n_extra, extra;
    -- rows the query produces that the stream table lacks
    EXECUTE format(
        'SELECT count(*), string_agg(r, '' '' ORDER BY r) FILTER (WHERE n <= 3)
           FROM (SELECT r, row_number() OVER (ORDER BY r) AS n
                   FROM (SELECT q::text AS r FROM (%s) q
                         EXCEPT ALL
                         SELECT t::text FROM (SELECT %s FROM %s) t) d) d2',
        q, cols, st) INTO n_miss, miss;

    IF n_extra = 0 AND n_miss = 0 THEN
        RETURN 'ok';
    END IF;
    RETURN format('%s: %s extra row(s)%s; %s missing row(s)%s',
                  st, n_extra, coalesce(' ' || extra, ''),
                  n_miss, coalesce(' ' || miss, ''));
END
$fn$;

-- Refreshes st, then shows the action recorded, the reason for a FULL
-- refresh, the rows written (a grouped, DISTINCT or UNION result counts
-- every group it rewrote as inserted), and the oracle's verdict.
CREATE FUNCTION public.pgt_refresh_report(st regclass,
    OUT action text, OUT fallback_reason text, OUT ins bigint, OUT del bigint,
    OUT pgt_check text)
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pgtrickle.refresh_stream_table(st::text);
    SELECT h.action, h.fallback_reason, h.rows_inserted, h.rows_deleted
      INTO action, fallback_reason, ins, del
      FROM pgtrickle.pgt_refresh_history h
      JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
     WHERE s.pgt_relid = st
     ORDER BY h.refresh_id DESC LIMIT 1;
    pgt_check := public.pgt_check(st);
END
$fn$;

-- The catalog row of a stream table without the columns that change from run
-- to run (ids, OIDs, timestamps, frontier).
CREATE FUNCTION public.pgt_catalog(st regclass)
RETURNS TABLE (field text, value text)
LANGUAGE sql STABLE AS $fn$
    SELECT a.attname::text, coalesce(j.value, '(null)')
      FROM pgtrickle.pgt_stream_tables s
     CROSS JOIN LATERAL jsonb_each_text(to_jsonb(s)) j
      JOIN pg_attribute a
        ON a.attrelid = 'pgtrickle.pgt_stream_tables'::regclass
       AND a.attname = j.key
     WHERE s.pgt_relid = st
       AND j.key NOT IN ('pgt_id', 'pgt_relid', 'data_timestamp', 'frontier',
                         'last_refresh_at', 'created_at', 'updated_at')
     ORDER BY a.attnum
$fn$;

-- Counts of everything a failed call could leave behind.
CREATE FUNCTION public.pgt_census() RETURNS text
LANGUAGE sql STABLE AS $fn$
    SELECT format('stream_tables=%s dependencies=%s history=%s relations=%s triggers=%s depends=%s types=%s',
                  (SELECT count(*) FROM pgtrickle.pgt_stream_tables),
                  (SELECT count(*) FROM pgtrickle.pgt_dependencies),
                  (SELECT count(*) FROM pgtrickle.pgt_refresh_history),
                  (SELECT count(*) FROM pg_class),
                  (SELECT count(*) FROM pg_trigger),
                  (SELECT count(*) FROM pg_depend),
                  (SELECT count(*) FROM pg_type))
$fn$;

-- Runs sql.  Returns 'OK', or the error's SQLSTATE, message, DETAIL and HINT
-- followed by a line saying whether any object or catalog row was left
-- behind.  (LOCATION and CONTEXT are omitted: they name C line numbers.)
CREATE FUNCTION public.pgt_try(sql text) RETURNS SETOF text
LANGUAGE plpgsql AS $fn$
DECLARE
    before  text := public.pgt_census();
    after   text;
    code    text;
    msg     text;
    det     text;
    hnt     text;
BEGIN
    BEGIN
        EXECUTE sql;
        RETURN NEXT 'OK';
        RETURN;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    END;
    RETURN NEXT format('ERROR %s: %s', code, msg);
    IF det <> '' THEN
        RETURN NEXT 'DETAIL: ' || det;
    END IF;
    IF hnt <> '' THEN
        RETURN NEXT 'HINT: ' || hnt;
    END IF;
    after := public.pgt_census();
    IF after = before THEN
        RETURN NEXT 'nothing left behind';
    ELSE
        RETURN NEXT format('LEFT BEHIND: %s -> %s', before, after);
    END IF;
END
$fn$;

-- The helpers work on a stream table.
CREATE TABLE setup_src (k int, v text);
INSERT INTO setup_src VALUES (1, 'a'), (2, 'b'), (2, 'b'), (NULL, NULL);
SELECT pgtrickle.create_stream_table('setup_st', 'SELECT k, v FROM setup_src',
                                     refresh_mode => 'FULL');
SELECT pgt_check('setup_st');
SELECT * FROM pgt_catalog('setup_st');

-- The oracle notices every kind of difference: a missing row, a missing
-- duplicate, a NULL turned into a value, an extra row.  (The guard trigger
-- is disabled only to damage the stream table on purpose.)
ALTER TABLE setup_st DISABLE TRIGGER USER;
DELETE FROM setup_st WHERE k = 1;
SELECT pgt_check('setup_st');
SELECT pgtrickle.refresh_stream_table('setup_st');
DELETE FROM setup_st WHERE ctid = (SELECT min(ctid) FROM setup_st WHERE k = 2);
SELECT pgt_check('setup_st');
SELECT pgtrickle.refresh_stream_table('setup_st');
UPDATE setup_st SET v = '' WHERE k IS NULL;
SELECT pgt_check('setup_st');
SELECT pgtrickle.refresh_stream_table('setup_st');
INSERT INTO setup_st VALUES (3, 'c', 0);
SELECT pgt_check('setup_st');
ALTER TABLE setup_st ENABLE TRIGGER USER;
SELECT pgtrickle.refresh_stream_table('setup_st');
SELECT pgt_check('setup_st');
-- and one that is not a stream table
SELECT pgt_check('setup_src');

-- pgt_try reports the SQLSTATE, message, detail and hint, and notices
-- leftovers.
SELECT pgt_try('SELECT 1');
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('setup_st', 'SELECT 1 AS x')$$);
SELECT pgt_try('SELECT 1/0');

SELECT pgtrickle.drop_stream_table('setup_st');
DROP TABLE setup_src;
SELECT count(*) AS stream_tables FROM pgtrickle.pgt_stream_tables;
