--
-- safety_storage: stream tables in publications, and what a query change
-- that rebuilds the storage keeps (issue 12, item 3).
--
-- 1. Every stream table (FULL, DIFFERENTIAL, IMMEDIATE) and change buffer
--    has REPLICA IDENTITY FULL, so refreshes, IMMEDIATE writes and buffer
--    trimming work while they are in a publication, including FOR ALL
--    TABLES.  Users may change a stream table's replica identity and its
--    publication membership.
-- 2. A query change that changes the columns keeps indexes, constraints,
--    triggers, statistics, policies and RLS, publication membership,
--    grants, comments, replica identity, owner, tablespace and storage
--    parameters, in every refresh mode; what used a column that is gone is
--    dropped with a NOTICE, or the change is refused (policies, publication
--    column lists and row filters).
--
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE ss_src (id int PRIMARY KEY, k int, v int, w text);
INSERT INTO ss_src SELECT g, g % 3, g, 'w' || g FROM generate_series(1, 9) g;
-- a keyless source with duplicate rows, for a multiset stream table
CREATE TABLE ss_dup (k int, v int);
ALTER TABLE ss_dup REPLICA IDENTITY FULL;
INSERT INTO ss_dup VALUES (1, 1), (1, 1), (2, 2);

-- 1. Replica identity and publications

SELECT pgtrickle.create_stream_table('ss_full', 'SELECT k, sum(v) AS s FROM ss_src GROUP BY k',
                                     schedule => '1h', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('ss_diff', 'SELECT k, sum(v) AS s FROM ss_src GROUP BY k',
                                     schedule => '1h', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('ss_imm', 'SELECT k, v FROM ss_dup',
                                     refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('ss_single', 'SELECT count(*) AS n FROM ss_src',
                                     schedule => '1h', refresh_mode => 'DIFFERENTIAL');

-- every stream table and change buffer: FULL
SELECT c.relname, c.relreplident
  FROM pg_class c WHERE c.relname LIKE 'ss\_%' AND c.relkind = 'r'
   AND c.oid IN (SELECT pgt_relid FROM pgtrickle.pgt_stream_tables)
 ORDER BY 1;
SELECT count(*) > 0 AS have_buffers, count(*) FILTER (WHERE relreplident <> 'f') AS not_full
  FROM pg_class WHERE relnamespace = 'pgtrickle_changes'::regnamespace AND relkind = 'r';

-- in a publication, every kind of maintenance works (0.1.0: "cannot delete
-- from table ... because it does not have a replica identity")
-- (the regression server's wal_level is not logical: it does not matter here)
SET client_min_messages = error;
CREATE PUBLICATION ss_pub FOR TABLE ss_full, ss_diff, ss_imm, ss_single, ss_src, ss_dup;
RESET client_min_messages;
INSERT INTO ss_src VALUES (10, 1, 100, 'w10');
DELETE FROM ss_src WHERE id IN (1, 2);
UPDATE ss_src SET v = v + 1 WHERE id = 3;
SELECT * FROM pgt_refresh_report('ss_full');
SELECT * FROM pgt_refresh_report('ss_diff');
SELECT * FROM pgt_refresh_report('ss_single');
-- IMMEDIATE: deleting one of two duplicates deletes one stored row
DELETE FROM ss_dup WHERE ctid = (SELECT min(ctid) FROM ss_dup WHERE k = 1);
UPDATE ss_dup SET v = 3 WHERE k = 2;
SELECT pgt_check('ss_imm');
SELECT k, v FROM ss_imm ORDER BY k, v;
DROP PUBLICATION ss_pub;

-- FOR ALL TABLES publishes pg_trickle's catalog and change buffers too (an
-- extension cannot keep its tables out): a WARNING says so (besides
-- PostgreSQL's about wal_level), and everything still works
CREATE PUBLICATION ss_all FOR ALL TABLES;
SELECT schemaname, count(*) FILTER (WHERE tablename LIKE 'changes\_%') > 0 AS buffers,
       string_agg(tablename, ', ' ORDER BY tablename) FILTER (WHERE tablename NOT LIKE 'changes\_%') AS tables
  FROM pg_publication_tables WHERE pubname = 'ss_all' AND schemaname LIKE 'pgtrickle%'
 GROUP BY 1 ORDER BY 1;
INSERT INTO ss_src VALUES (11, 2, 110, 'w11');
DELETE FROM ss_src WHERE id = 4;
SELECT * FROM pgt_refresh_report('ss_diff');
SELECT * FROM pgt_refresh_report('ss_full');
INSERT INTO ss_dup VALUES (1, 1);
DELETE FROM ss_dup WHERE k = 2;
SELECT pgt_check('ss_imm');
DROP PUBLICATION ss_all;
-- so does a publication of pg_trickle's schemas; others do not warn
CREATE PUBLICATION ss_schema FOR TABLES IN SCHEMA public;
ALTER PUBLICATION ss_schema ADD TABLES IN SCHEMA pgtrickle_changes;
DROP PUBLICATION ss_schema;

-- users may change a stream table's replica identity and publication
-- membership (the DDL guard only refuses changes of its columns)
SELECT pgt_try('ALTER TABLE ss_diff REPLICA IDENTITY NOTHING');
SELECT pgt_try('ALTER TABLE ss_diff REPLICA IDENTITY FULL');
SET client_min_messages = error;
CREATE PUBLICATION ss_pub2;
RESET client_min_messages;
SELECT pgt_try('ALTER PUBLICATION ss_pub2 ADD TABLE ss_diff, ss_imm');
SELECT pgt_try('ALTER PUBLICATION ss_pub2 DROP TABLE ss_imm');
SELECT tablename FROM pg_publication_tables WHERE pubname = 'ss_pub2';
DROP PUBLICATION ss_pub2;
-- its columns stay guarded
SELECT pgt_try('ALTER TABLE ss_diff ADD COLUMN x int');
SELECT pgt_try('ALTER TABLE ss_diff DROP COLUMN s');

SELECT pgtrickle.drop_stream_table('ss_full');
SELECT pgtrickle.drop_stream_table('ss_diff');
SELECT pgtrickle.drop_stream_table('ss_imm');
SELECT pgtrickle.drop_stream_table('ss_single');

-- 2. What a query change that rebuilds the storage keeps

SET allow_in_place_tablespaces = on;
CREATE TABLESPACE ss_ts LOCATION '';
CREATE ROLE ss_owner;
CREATE ROLE ss_reader;
CREATE ROLE ss_colreader;
GRANT CREATE ON SCHEMA public TO ss_owner;
GRANT ALL ON ss_src TO ss_owner;
GRANT CREATE ON TABLESPACE ss_ts TO ss_owner;
DO $$BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO ss_owner', current_database()); END$$;
CREATE FUNCTION ss_noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;

-- everything attached to stream table st, one line per property; the
-- internal indexes are shown by their definition only (their names follow
-- the storage table's name at creation)
CREATE FUNCTION pg_temp.props(st regclass) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT 'owner: ' || pg_get_userbyid(relowner) FROM pg_class WHERE oid = st
    UNION ALL
    SELECT 'tablespace: ' || coalesce((SELECT spcname FROM pg_tablespace WHERE oid = reltablespace), '(default)')
      FROM pg_class WHERE oid = st
    UNION ALL
    SELECT 'reloptions: ' || coalesce(reloptions::text, '(none)') FROM pg_class WHERE oid = st
    UNION ALL
    SELECT 'replica identity: ' || relreplident::text ||
           coalesce(' ' || (SELECT i.indexrelid::regclass::text FROM pg_index i
                             WHERE i.indrelid = st AND i.indisreplident), '')
      FROM pg_class WHERE oid = st
    UNION ALL
    SELECT format('row security: enabled=%s forced=%s', relrowsecurity, relforcerowsecurity)
      FROM pg_class WHERE oid = st
    UNION ALL
    SELECT 'comment: ' || coalesce(obj_description(st, 'pg_class'), '(none)')
    UNION ALL
    SELECT 'acl: ' || coalesce(relacl::text, '(none)') FROM pg_class WHERE oid = st
    UNION ALL
    (SELECT format('column %s: not null=%s acl=%s comment=%s', attname, attnotnull,
                   coalesce(attacl::text, '-'), coalesce(col_description(st, attnum), '-'))
       FROM pg_attribute WHERE attrelid = st AND attnum > 0 AND NOT attisdropped
        AND attname NOT LIKE '\_\_pgt\_%' ORDER BY attnum)
    UNION ALL
    (SELECT 'index: ' || CASE WHEN c.relname LIKE '\_\_pgt\_new\_%' OR c.relname LIKE '%\_\_pgt\_row\_id\_idx'
                               OR (i.indisunique AND i.indnullsnotdistinct)
                              THEN '(pg_trickle) ' || regexp_replace(pg_get_indexdef(i.indexrelid), 'INDEX \S+ ON', 'INDEX ON')
                              ELSE pg_get_indexdef(i.indexrelid) END ||
            coalesce(' TABLESPACE ' || (SELECT spcname FROM pg_tablespace WHERE oid = c.reltablespace), '')
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = st ORDER BY 1)
    UNION ALL
    (SELECT format('constraint %s: %s', conname, pg_get_constraintdef(oid))
       FROM pg_constraint WHERE conrelid = st ORDER BY conname)
    UNION ALL
    (SELECT format('trigger %s (enabled=%s): %s', tgname, tgenabled, pg_get_triggerdef(oid))
       FROM pg_trigger WHERE tgrelid = st AND NOT tgisinternal AND tgname NOT LIKE '\_\_pgt%' ORDER BY tgname)
    UNION ALL
    (SELECT format('statistics %s: %s', stxname, pg_get_statisticsobjdef(oid))
       FROM pg_statistic_ext WHERE stxrelid = st ORDER BY stxname)
    UNION ALL
    (SELECT format('policy %s: %s %s to %s using %s check %s', policyname, permissive, cmd,
                   roles, coalesce(qual, '-'), coalesce(with_check, '-'))
       FROM pg_policies p JOIN pg_class c ON c.relname = p.tablename
       JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = p.schemaname
      WHERE c.oid = st ORDER BY policyname)
    UNION ALL
    (SELECT format('publication %s: columns %s filter %s', pubname, attnames, coalesce(rowfilter, '-'))
       FROM pg_publication_tables p JOIN pg_class c ON c.relname = p.tablename
       JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = p.schemaname
      WHERE c.oid = st ORDER BY pubname)
$$;

-- decorate(st): what a user or DBA typically attaches to a stream table
-- with columns k, s and mw (mw is gone after the query change below)
CREATE FUNCTION pg_temp.decorate(st text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %I SET TABLESPACE ss_ts', st);
    EXECUTE format('ALTER TABLE %I SET (fillfactor = 70, autovacuum_enabled = false)', st);
    EXECUTE format('CREATE INDEX %I ON %I (s) TABLESPACE ss_ts', st || '_s', st);
    EXECUTE format('CREATE INDEX %I ON %I ((k + 1)) WHERE s > 0', st || '_expr', st);
    EXECUTE format('CREATE INDEX %I ON %I (mw)', st || '_mw', st);
    EXECUTE format('ALTER TABLE %I ALTER COLUMN k SET NOT NULL', st);
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I (k)', st || '_k', st);
    EXECUTE format('ALTER TABLE %I REPLICA IDENTITY USING INDEX %I', st, st || '_k');
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (s >= 0)', st, st || '_s_check');
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (length(mw) < 100)', st, st || '_mw_check');
    EXECUTE format('CREATE STATISTICS %I ON k, s FROM %I', st || '_stat', st);
    EXECUTE format('CREATE TRIGGER ss_user AFTER INSERT ON %I FOR EACH STATEMENT EXECUTE FUNCTION ss_noop()', st);
    EXECUTE format('ALTER TABLE %I DISABLE TRIGGER ss_user', st);
    EXECUTE format('CREATE CONSTRAINT TRIGGER ss_ctrig AFTER INSERT ON %I '
                   'FOR EACH ROW EXECUTE FUNCTION ss_noop()', st);
    EXECUTE format('GRANT SELECT ON %I TO ss_reader', st);
    EXECUTE format('GRANT SELECT (k, s, mw) ON %I TO ss_colreader', st);
    EXECUTE format('COMMENT ON TABLE %I IS %L', st, 'totals of ' || st);
    EXECUTE format('COMMENT ON COLUMN %I.s IS %L', st, 'the sum');
    EXECUTE format('COMMENT ON COLUMN %I.mw IS %L', st, 'the max');
    -- (not FORCE: maintenance writes as the owner, and would be subject to
    -- the policies)
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', st);
    EXECUTE format('CREATE POLICY pos ON %I FOR SELECT TO ss_reader USING (k >= 0)', st);
    EXECUTE format('CREATE POLICY lim ON %I AS RESTRICTIVE TO PUBLIC USING (s < 1000)', st);
    EXECUTE format('CREATE PUBLICATION %I FOR TABLE %I', st || '_pub', st);
    EXECUTE format('CREATE PUBLICATION %I FOR TABLE %I (k, s) WHERE (k > 0) WITH (publish = %L)',
                   st || '_pub_ins', st, 'insert');
END
$$;

CREATE FUNCTION pg_temp.undecorate(st text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP PUBLICATION %I, %I', st || '_pub', st || '_pub_ins');
    PERFORM pgtrickle.drop_stream_table(st);
END
$$;

-- the same in each refresh mode: a stream table owned by ss_owner, changed
-- by a superuser to a query that drops column mw and adds column n
SET ROLE ss_owner;
SELECT pgtrickle.create_stream_table('ss_keep_full',
    'SELECT k, sum(v) AS s, max(w) AS mw FROM ss_src GROUP BY k', schedule => '1h', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('ss_keep_diff',
    'SELECT k, sum(v) AS s, max(w) AS mw FROM ss_src GROUP BY k', schedule => '1h', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('ss_keep_imm',
    'SELECT k, sum(v) AS s, max(w) AS mw FROM ss_src GROUP BY k', refresh_mode => 'IMMEDIATE');
SET client_min_messages = error;
SELECT pg_temp.decorate('ss_keep_full');
SELECT pg_temp.decorate('ss_keep_diff');
SELECT pg_temp.decorate('ss_keep_imm');
RESET client_min_messages;
RESET ROLE;

SELECT pg_temp.props('ss_keep_diff');
SELECT pgtrickle.alter_stream_table('ss_keep_diff',
    query => 'SELECT k, sum(v) AS s, count(*) AS n FROM ss_src GROUP BY k');
SELECT pg_temp.props('ss_keep_diff');
SELECT pgtrickle.alter_stream_table('ss_keep_full',
    query => 'SELECT k, sum(v) AS s, count(*) AS n FROM ss_src GROUP BY k');
SELECT pg_temp.props('ss_keep_full');
-- (this one changed by its owner)
SET ROLE ss_owner;
SELECT pgtrickle.alter_stream_table('ss_keep_imm',
    query => 'SELECT k, sum(v) AS s, count(*) AS n FROM ss_src GROUP BY k');
RESET ROLE;
SELECT pg_temp.props('ss_keep_imm');

-- the three are alike in everything but their names: no property line
-- differs
SELECT p AS differs, count(*)
  FROM (SELECT replace(pg_temp.props('ss_keep_full'), 'ss_keep_full', 'X')
        UNION ALL SELECT replace(pg_temp.props('ss_keep_diff'), 'ss_keep_diff', 'X')
        UNION ALL SELECT replace(pg_temp.props('ss_keep_imm'), 'ss_keep_imm', 'X')) s(p)
 GROUP BY p HAVING count(*) <> 3;

-- they keep being maintained, with the kept unique index, CHECK and
-- publications in place
INSERT INTO ss_src VALUES (20, 5, 7, 'w20');
DELETE FROM ss_src WHERE id = 5;
SELECT * FROM pgt_refresh_report('ss_keep_diff');
SELECT * FROM pgt_refresh_report('ss_keep_full');
SELECT pgt_check('ss_keep_imm');
-- and the kept grants and policies apply
SET ROLE ss_reader;
SELECT k, s, n FROM ss_keep_imm ORDER BY k;
RESET ROLE;
SET ROLE ss_colreader;
SELECT pgt_try('SELECT k, s FROM ss_keep_imm');
SELECT pgt_try('SELECT n FROM ss_keep_imm');
RESET ROLE;

-- what cannot be kept: a policy or a publication column list on a column
-- that the new query drops refuses the change, naming it
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('ss_keep_diff',
    query => 'SELECT k, count(*) AS n FROM ss_src GROUP BY k')$$);
DROP POLICY lim ON ss_keep_diff;
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('ss_keep_diff',
    query => 'SELECT k, count(*) AS n FROM ss_src GROUP BY k')$$);
ALTER PUBLICATION ss_keep_diff_pub_ins SET TABLE ss_keep_diff (k) WHERE (k > 0);
SELECT pgtrickle.alter_stream_table('ss_keep_diff',
    query => 'SELECT k, count(*) AS n FROM ss_src GROUP BY k');
SELECT pg_temp.props('ss_keep_diff');
SELECT * FROM pgt_refresh_report('ss_keep_diff');

-- a query change that keeps the columns keeps the storage itself
SELECT c.oid AS before_oid FROM pg_class c WHERE relname = 'ss_keep_full' \gset
SELECT pgtrickle.alter_stream_table('ss_keep_full',
    query => 'SELECT k, sum(v) AS s, count(*) AS n FROM ss_src WHERE v > 0 GROUP BY k');
SELECT 'ss_keep_full'::regclass::oid = :before_oid AS same_storage;

SELECT pg_temp.undecorate('ss_keep_full');
SELECT pg_temp.undecorate('ss_keep_diff');
SELECT pg_temp.undecorate('ss_keep_imm');
DROP FUNCTION ss_noop();
DROP TABLE ss_src, ss_dup;
REVOKE ALL ON SCHEMA public FROM ss_owner;
DO $$BEGIN EXECUTE format('REVOKE ALL ON DATABASE %I FROM ss_owner', current_database()); END$$;
DROP TABLESPACE ss_ts;
DROP ROLE ss_owner, ss_reader, ss_colreader;
