--
-- api_lifecycle: the life of a stream table after create_stream_table():
-- create_stream_table_if_not_exists, create_or_replace_stream_table,
-- alter_stream_table, suspend and resume, drop_stream_table (with and
-- without cascade), DROP TABLE of a source or of the stream table itself,
-- export_definition and replay, refresh history, the information functions,
-- and ownership.
--
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE l_src (id int PRIMARY KEY, grp text, val int);
INSERT INTO l_src SELECT g, 'g' || (g % 3), g * 10 FROM generate_series(1, 6) g;

-- a stream table's storage OID, history length and last change, for
-- comparisons that must not print them
CREATE TEMP TABLE saved (st text PRIMARY KEY, relid oid, history bigint, updated timestamptz);
CREATE FUNCTION pg_temp.save(st text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO saved
    SELECT st, s.pgt_relid,
           (SELECT count(*) FROM pgtrickle.pgt_refresh_history h WHERE h.pgt_id = s.pgt_id),
           s.updated_at
      FROM pgtrickle.pgt_stream_tables s WHERE s.pgt_relid = st::regclass
    ON CONFLICT (st) DO UPDATE SET relid = excluded.relid, history = excluded.history,
                                   updated = excluded.updated
$$;
-- same_oid: the storage table is the one saved; new_refreshes: refreshes
-- since; changed: the catalog row was updated since
CREATE FUNCTION pg_temp.since(st text,
    OUT same_oid boolean, OUT new_refreshes bigint, OUT changed boolean)
LANGUAGE sql AS $$
    SELECT s.pgt_relid = v.relid,
           (SELECT count(*) FROM pgtrickle.pgt_refresh_history h WHERE h.pgt_id = s.pgt_id) - v.history,
           s.updated_at <> v.updated
      FROM saved v JOIN pgtrickle.pgt_stream_tables s ON s.pgt_relid = st::regclass
     WHERE v.st = since.st
$$;
-- visible columns of a relation
CREATE FUNCTION pg_temp.columns(rel regclass) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
      FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped
$$;

--
-- create_stream_table_if_not_exists
--
SELECT pgtrickle.create_stream_table_if_not_exists('l_ine', 'SELECT id, val FROM l_src',
                                                   refresh_mode => 'FULL');
SELECT pgt_check('l_ine');
SELECT pg_temp.save('l_ine');
-- exists: a NOTICE, and nothing changes, even with another query and settings
SELECT pgtrickle.create_stream_table_if_not_exists('l_ine', 'SELECT id FROM l_src',
                                                   schedule => '1m', refresh_mode => 'FULL');
SELECT * FROM pg_temp.since('l_ine');
SELECT schedule, pg_temp.columns('l_ine') FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'l_ine';
SELECT pgtrickle.drop_stream_table('l_ine');

--
-- create_or_replace_stream_table
--
-- creates
SELECT pgtrickle.create_or_replace_stream_table('l_cor',
    'SELECT id, val FROM l_src WHERE val > 20', refresh_mode => 'FULL',
    diamond_consistency => 'none');
SELECT count(*), pgt_check('l_cor') FROM l_cor;
SELECT pg_temp.save('l_cor');
-- identical (even written differently): a NOTICE and nothing changes
SELECT pgtrickle.create_or_replace_stream_table('l_cor',
    'select id, val from l_src where val>20', refresh_mode => 'full',
    diamond_consistency => 'none');
SELECT * FROM pg_temp.since('l_cor');
-- settings only: updated in place, no refresh; settings not given go back
-- to their defaults (diamond_consistency)
SELECT pgtrickle.create_or_replace_stream_table('l_cor',
    'SELECT id, val FROM l_src WHERE val > 20', schedule => '5m', refresh_mode => 'FULL');
SELECT * FROM pg_temp.since('l_cor');
SELECT schedule, refresh_mode, diamond_consistency FROM pgtrickle.pgt_stream_tables
 WHERE pgt_name = 'l_cor';
SELECT pg_temp.save('l_cor');
-- a new query with the same columns: same storage table, refreshed, new rows
SELECT pgtrickle.create_or_replace_stream_table('l_cor',
    'SELECT id, val FROM l_src WHERE val > 40', schedule => '5m', refresh_mode => 'FULL');
SELECT * FROM pg_temp.since('l_cor');
SELECT id, val FROM l_cor ORDER BY id;
SELECT pgt_check('l_cor');
SELECT pg_temp.save('l_cor');
-- a new query with other columns: the storage table is rebuilt
GRANT SELECT ON l_cor TO PUBLIC;
CREATE INDEX l_cor_val ON l_cor (val);
SELECT pgtrickle.create_or_replace_stream_table('l_cor',
    'SELECT grp, sum(val) AS total FROM l_src GROUP BY grp', schedule => '5m',
    refresh_mode => 'FULL');
SELECT * FROM pg_temp.since('l_cor');
SELECT pg_temp.columns('l_cor');
SELECT grp, total FROM l_cor ORDER BY grp;
SELECT pgt_check('l_cor');
SELECT row_identity, identity_columns FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'l_cor';
-- the old storage table and every temporary name are gone; the new table
-- has one guard trigger and its own indexes
SELECT count(*) AS old_storage FROM pg_class WHERE oid = (SELECT relid FROM saved WHERE st = 'l_cor');
SELECT count(*) AS temp_names FROM pg_class WHERE relname LIKE '\_\_pgt\_new%';
SELECT tgname FROM pg_trigger WHERE tgrelid = 'l_cor'::regclass ORDER BY tgname;
SELECT (SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
         WHERE attrelid = i.indrelid AND attnum = ANY (i.indkey)) AS index_columns,
       indisunique, c.relname LIKE 'l\_cor\_%' AS named_after_table
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE indrelid = 'l_cor'::regclass ORDER BY 1;
-- privileges granted on the old storage table are kept (the index on the
-- dropped column val is not: NOTICE above)
SELECT relacl IS NOT NULL AND array_to_string(relacl, ',') LIKE '%=r/%' AS public_can_select
  FROM pg_class WHERE oid = 'l_cor'::regclass;
-- a view on the stream table stops a rebuild (and the replace as a whole)
CREATE VIEW l_cor_view AS SELECT grp FROM l_cor;
SELECT pgt_try($$SELECT pgtrickle.create_or_replace_stream_table('l_cor',
    'SELECT grp, count(*) AS n FROM l_src GROUP BY grp', schedule => '5m', refresh_mode => 'FULL')$$);
SELECT pg_temp.columns('l_cor');
DROP VIEW l_cor_view;
SELECT pgtrickle.drop_stream_table('l_cor');

--
-- alter_stream_table
--
SELECT pgtrickle.create_stream_table('l_alt', 'SELECT id, grp FROM l_src',
                                     schedule => '1m', refresh_mode => 'FULL');
SELECT pg_temp.save('l_alt');
-- schedule
SELECT pgtrickle.alter_stream_table('l_alt', schedule => '@daily');
SELECT schedule, refresh_mode FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'l_alt';
SELECT pgtrickle.alter_stream_table('l_alt', schedule => 'calculated');
SELECT schedule FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'l_alt';
-- refresh mode FULL -> AUTO (DIFFERENTIAL) -> FULL
SELECT pgtrickle.alter_stream_table('l_alt', refresh_mode => 'AUTO');
SELECT * FROM pgtrickle.explain_refresh_mode('l_alt');
SELECT pgtrickle.alter_stream_table('l_alt', refresh_mode => 'FULL');
SELECT * FROM pgtrickle.explain_refresh_mode('l_alt');
-- other settings; what is not given is unchanged
SELECT pgtrickle.alter_stream_table('l_alt', diamond_consistency => 'none',
    diamond_schedule_policy => 'slowest', cdc_mode => 'trigger', append_only => true,
    pooler_compatibility_mode => true, max_differential_joins => 2, max_delta_fraction => 0.5);
SELECT schedule, refresh_mode, diamond_consistency, diamond_schedule_policy, cdc_mode,
       append_only, pooler_compatibility_mode, max_differential_joins, max_delta_fraction
  FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'l_alt';
SELECT * FROM pg_temp.since('l_alt');
-- SUSPENDED: a manual refresh is refused until resumed
SELECT pgtrickle.alter_stream_table('l_alt', status => 'suspended');
SELECT status FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'l_alt';
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('l_alt')$$);
-- changing a setting keeps it suspended
SELECT pgtrickle.alter_stream_table('l_alt', schedule => '10m');
SELECT status FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'l_alt';
SELECT pgtrickle.resume_stream_table('l_alt');
SELECT status, consecutive_errors FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'l_alt';
UPDATE l_src SET grp = 'g9' WHERE id = 1;
SELECT pgtrickle.refresh_stream_table('l_alt');
SELECT pgt_check('l_alt');
-- status ACTIVE through alter works too
SELECT pgtrickle.alter_stream_table('l_alt', status => 'SUSPENDED');
SELECT pgtrickle.alter_stream_table('l_alt', status => 'ACTIVE');
SELECT status FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'l_alt';
-- a new query with the same columns keeps the storage table
SELECT pg_temp.save('l_alt');
SELECT pgtrickle.alter_stream_table('l_alt', query => 'SELECT id, grp FROM l_src WHERE id <= 3');
SELECT * FROM pg_temp.since('l_alt');
SELECT id, grp FROM l_alt ORDER BY id;
SELECT pgt_check('l_alt');
-- one with other columns rebuilds it
SELECT pg_temp.save('l_alt');
SELECT pgtrickle.alter_stream_table('l_alt', query => 'SELECT id, grp, val FROM l_src WHERE id <= 3');
SELECT * FROM pg_temp.since('l_alt');
SELECT pg_temp.columns('l_alt');
SELECT pgt_check('l_alt');
-- the settings survive a query change
SELECT schedule, refresh_mode, diamond_consistency, append_only, max_differential_joins
  FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'l_alt';
SELECT d.source_relid::regclass AS source FROM pgtrickle.pgt_dependencies d
  JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) WHERE s.pgt_name = 'l_alt';
SELECT pgtrickle.drop_stream_table('l_alt');

--
-- drop_stream_table
--
-- change capture on a source: its triggers and its change buffer
CREATE FUNCTION pg_temp.capture(src oid, OUT triggers bigint, OUT buffer boolean)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM pg_trigger WHERE tgrelid = src AND tgname LIKE '\_\_pgt\_cdc%'),
           EXISTS (SELECT 1 FROM pg_class
                    WHERE relnamespace = 'pgtrickle_changes'::regnamespace
                      AND relname = 'changes_' || src)
$$;
-- capture that no stream table needs: capture triggers and change buffers
-- of sources (or partitions of sources) that no stream table reads
-- differentially
CREATE FUNCTION pg_temp.unneeded_capture(OUT triggers bigint, OUT buffers bigint)
LANGUAGE sql AS $$
    WITH needed AS (
        SELECT d.source_relid FROM pgtrickle.pgt_dependencies d
          JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
         WHERE d.cdc_mode = 'TRIGGER' AND s.effective_refresh_mode <> 'FULL')
    SELECT (SELECT count(*) FROM pg_trigger t
             WHERE t.tgname LIKE '\_\_pgt\_cdc%'
               AND t.tgrelid NOT IN (SELECT source_relid FROM needed)
               AND NOT EXISTS (SELECT 1 FROM pg_partition_ancestors(t.tgrelid) a
                                WHERE a.relid IN (SELECT source_relid FROM needed))),
           (SELECT count(*) FROM pg_class c
             WHERE c.relnamespace = 'pgtrickle_changes'::regnamespace AND c.relkind = 'r'
               AND c.relname NOT IN (SELECT 'changes_' || source_relid FROM needed))
$$;
SELECT * FROM pg_temp.capture('l_src'::regclass);
SELECT pgtrickle.create_stream_table('l_drop', 'SELECT id FROM l_src', refresh_mode => 'DIFFERENTIAL');
SELECT * FROM pg_temp.capture('l_src'::regclass);
SELECT pgtrickle.refresh_stream_table('l_drop');
SELECT pgt_id AS l_drop_id, pgt_relid AS l_drop_relid FROM pgtrickle.pgt_stream_tables
 WHERE pgt_name = 'l_drop' \gset
SELECT pgtrickle.drop_stream_table('l_drop');
SELECT (SELECT count(*) FROM pg_class WHERE oid = :l_drop_relid) AS relations,
       (SELECT count(*) FROM pg_depend WHERE objid = :l_drop_relid OR refobjid = :l_drop_relid) AS depends,
       (SELECT count(*) FROM pg_trigger WHERE tgrelid = :l_drop_relid) AS triggers,
       (SELECT count(*) FROM pgtrickle.pgt_stream_tables WHERE pgt_id = :l_drop_id) AS catalog,
       (SELECT count(*) FROM pgtrickle.pgt_dependencies WHERE pgt_id = :l_drop_id) AS dependencies,
       (SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE pgt_id = :l_drop_id) AS history;
-- the capture nothing else needs is gone too
SELECT * FROM pg_temp.capture('l_src'::regclass);
SELECT * FROM pg_temp.unneeded_capture();
-- but stays while another differential stream table reads the source
SELECT pgtrickle.create_stream_table('l_cap1', 'SELECT id FROM l_src', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('l_cap2', 'SELECT id, val FROM l_src', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.drop_stream_table('l_cap1');
SELECT * FROM pg_temp.capture('l_src'::regclass);
-- and goes when the last one becomes FULL
SELECT pgtrickle.alter_stream_table('l_cap2', refresh_mode => 'FULL');
SELECT * FROM pg_temp.capture('l_src'::regclass);
SELECT * FROM pg_temp.unneeded_capture();
SELECT pgtrickle.drop_stream_table('l_cap2');
-- or when create_or_replace_stream_table makes it FULL, or it is pointed at
-- another source by create_or_replace_stream_table or alter_stream_table
CREATE TABLE l_other (id int);
SELECT pgtrickle.create_stream_table('l_cap3', 'SELECT id FROM l_src', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_or_replace_stream_table('l_cap3', 'SELECT id FROM l_src', refresh_mode => 'FULL');
SELECT * FROM pg_temp.capture('l_src'::regclass);
SELECT pgtrickle.create_or_replace_stream_table('l_cap3', 'SELECT id FROM l_src',
                                                refresh_mode => 'DIFFERENTIAL');
SELECT * FROM pg_temp.capture('l_src'::regclass);
SELECT pgtrickle.create_or_replace_stream_table('l_cap3', 'SELECT id FROM l_other',
                                                refresh_mode => 'DIFFERENTIAL');
SELECT (SELECT triggers FROM pg_temp.capture('l_src'::regclass)) AS l_src_triggers,
       (SELECT triggers FROM pg_temp.capture('l_other'::regclass)) AS l_other_triggers;
SELECT pgtrickle.alter_stream_table('l_cap3', query => 'SELECT id FROM l_src');
SELECT (SELECT triggers FROM pg_temp.capture('l_src'::regclass)) AS l_src_triggers,
       (SELECT triggers FROM pg_temp.capture('l_other'::regclass)) AS l_other_triggers;
SELECT pgtrickle.drop_stream_table('l_cap3');
DROP TABLE l_other;
SELECT * FROM pg_temp.unneeded_capture();
-- a stream table that another reads: refused without cascade
SELECT pgtrickle.create_stream_table('l_base', 'SELECT id, val FROM l_src', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('l_reader1', 'SELECT id FROM l_base', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('l_reader2', 'SELECT sum(val) AS s FROM l_base',
                                     refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('l_reader3', 'SELECT s FROM l_reader2', refresh_mode => 'FULL');
SELECT pgt_try($$SELECT pgtrickle.drop_stream_table('l_base')$$);
SELECT pgt_try($$SELECT pgtrickle.drop_stream_table('l_base', cascade => false)$$);
-- with cascade, the readers (and theirs) go too
SELECT array_agg(pgt_relid ORDER BY pgt_id) AS cascade_relids FROM pgtrickle.pgt_stream_tables
 WHERE pgt_name IN ('l_base', 'l_reader1', 'l_reader2', 'l_reader3') \gset
SELECT pgtrickle.drop_stream_table('l_base', cascade => true);
SELECT count(*) AS catalog_rows FROM pgtrickle.pgt_stream_tables
 WHERE pgt_name IN ('l_base', 'l_reader1', 'l_reader2', 'l_reader3');
SELECT count(*) AS relations FROM pg_class WHERE oid = ANY (:'cascade_relids'::oid[]);
SELECT count(*) AS depends FROM pg_depend WHERE objid = ANY (:'cascade_relids'::oid[])
                                             OR refobjid = ANY (:'cascade_relids'::oid[]);
-- cascade also drops a plain view on the stream table; without it the
-- view stops the drop
SELECT pgtrickle.create_stream_table('l_viewed', 'SELECT id FROM l_src', refresh_mode => 'FULL');
CREATE VIEW l_viewed_v AS SELECT id FROM l_viewed;
SELECT pgt_try($$SELECT pgtrickle.drop_stream_table('l_viewed')$$);
SELECT pgtrickle.drop_stream_table('l_viewed', cascade => true);
SELECT count(*) AS left_over FROM pg_class WHERE relname IN ('l_viewed', 'l_viewed_v');

--
-- DROP TABLE of a source with CASCADE drops the stream tables reading it,
-- and their catalog rows (sql_drop event trigger); so does DROP TABLE of
-- the stream table itself, and DROP SCHEMA ... CASCADE.
--
CREATE TABLE l_src2 (id int);
INSERT INTO l_src2 VALUES (1), (2);
SELECT pgtrickle.create_stream_table('l_on_src2', 'SELECT id FROM l_src2', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('l_on_on_src2', 'SELECT count(*) AS n FROM l_on_src2',
                                     refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('l_direct', 'SELECT id FROM l_src', refresh_mode => 'DIFFERENTIAL');
SELECT 'l_src2'::regclass::oid AS l_src2_oid, 'l_on_src2'::regclass::oid AS l_on_src2_oid \gset
SELECT * FROM pg_temp.capture(:l_src2_oid);
SELECT * FROM pg_temp.capture(:l_on_src2_oid);
SELECT * FROM pg_temp.capture('l_src'::regclass);
-- (a global count(*) reads no column of its source, and stays exact)
INSERT INTO l_src2 VALUES (3), (3);
DELETE FROM l_src2 WHERE id = 1;
SELECT pgtrickle.refresh_stream_table('l_on_src2');
SELECT pgtrickle.refresh_stream_table('l_on_on_src2');
SELECT n, pgt_check('l_on_on_src2') FROM l_on_on_src2;
SELECT action FROM pgtrickle.get_refresh_history('l_on_on_src2', 1);
-- a schema holding a differential stream table (reading l_src4), and a
-- source read differentially by a stream table outside it
CREATE TABLE l_src4 (id int);
CREATE SCHEMA l_schema;
SELECT pgtrickle.create_stream_table('l_schema.l_in_schema', 'SELECT id FROM l_src4',
                                     refresh_mode => 'DIFFERENTIAL');
CREATE TABLE l_schema.l_src3 (id int);
SELECT pgtrickle.create_stream_table('l_on_src3', 'SELECT id FROM l_schema.l_src3',
                                     refresh_mode => 'DIFFERENTIAL');
SELECT 'l_schema.l_src3'::regclass::oid AS l_src3_oid \gset
SELECT * FROM pg_temp.capture(:l_src3_oid);
SELECT pgt_name FROM pgtrickle.pgt_stream_tables
 WHERE pgt_name IN ('l_on_src2', 'l_on_on_src2', 'l_direct', 'l_in_schema', 'l_on_src3')
 ORDER BY pgt_id;
DROP TABLE l_src2 CASCADE;
-- the capture of l_src2 and of the stream table l_on_src2 went with them
SELECT * FROM pg_temp.capture(:l_src2_oid);
SELECT * FROM pg_temp.capture(:l_on_src2_oid);
-- DROP TABLE of the stream table releases the capture of its source
-- (l_src4 is still read, by l_schema.l_in_schema)
DROP TABLE l_direct;
SELECT * FROM pg_temp.capture('l_src'::regclass);
SELECT * FROM pg_temp.capture('l_src4'::regclass);
DROP SCHEMA l_schema CASCADE;
SELECT count(*) AS catalog_rows FROM pgtrickle.pgt_stream_tables
 WHERE pgt_name IN ('l_on_src2', 'l_on_on_src2', 'l_direct', 'l_in_schema', 'l_on_src3');
SELECT count(*) AS relations FROM pg_class
 WHERE relname IN ('l_src2', 'l_on_src2', 'l_on_on_src2', 'l_direct', 'l_in_schema',
                   'l_src3', 'l_on_src3');
SELECT count(*) AS orphan_dependencies FROM pgtrickle.pgt_dependencies d
 WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = d.source_relid);
-- with their change capture
SELECT * FROM pg_temp.capture(:l_src2_oid);
SELECT * FROM pg_temp.capture(:l_on_src2_oid);
SELECT * FROM pg_temp.capture('l_src'::regclass);
SELECT * FROM pg_temp.capture('l_src4'::regclass);
SELECT * FROM pg_temp.capture(:l_src3_oid);
SELECT * FROM pg_temp.unneeded_capture();
DROP TABLE l_src4;
-- DROP TABLE of a stream table another one reads is refused
SELECT pgtrickle.create_stream_table('l_up', 'SELECT id FROM l_src', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('l_down', 'SELECT id FROM l_up', refresh_mode => 'FULL');
SELECT pgt_try($$DROP TABLE l_up$$);
DROP TABLE l_down, l_up;
SELECT count(*) AS catalog_rows FROM pgtrickle.pgt_stream_tables WHERE pgt_name IN ('l_up', 'l_down');

--
-- Renaming a stream table or moving it to another schema: the catalog
-- follows.
--
SELECT pgtrickle.create_stream_table('l_named', 'SELECT id FROM l_src', refresh_mode => 'FULL');
ALTER TABLE l_named RENAME TO l_renamed;
SELECT pgt_schema, pgt_name FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = 'l_renamed'::regclass;
SELECT pgtrickle.refresh_stream_table('l_renamed');
SELECT pgt_check('l_renamed');
CREATE SCHEMA l_moved;
ALTER TABLE l_renamed SET SCHEMA l_moved;
SELECT pgt_schema, pgt_name FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = 'l_moved.l_renamed'::regclass;
CREATE TEMP TABLE renamed AS SELECT pgtrickle.export_definition('l_moved.l_renamed') AS def;
SELECT def FROM renamed;
-- replaying it recreates the stream table under its current name
SELECT pgtrickle.drop_stream_table('l_moved.l_renamed');
SELECT def FROM renamed \gexec
SELECT pgt_schema, pgt_name, pgt_check(pgt_relid::regclass) FROM pgtrickle.pgt_stream_tables
 WHERE pgt_relid = 'l_moved.l_renamed'::regclass;
SELECT pgtrickle.drop_stream_table('l_moved.l_renamed');
DROP SCHEMA l_moved;

--
-- export_definition: replaying its output after a drop recreates the same
-- stream table.
--
CREATE SCHEMA l_exp;
SELECT pgtrickle.create_stream_table('l_exp."Export Me"',
    $q$SELECT grp, count(*) AS n, max(val) AS "Max Val" FROM l_src WHERE grp <> 'it''s' GROUP BY grp$q$,
    schedule => '*/15 * * * *', refresh_mode => 'FULL', diamond_consistency => 'none',
    diamond_schedule_policy => 'slowest', cdc_mode => 'trigger', append_only => true,
    pooler_compatibility_mode => true, max_differential_joins => 4, max_delta_fraction => 0.125);
SELECT pgtrickle.create_stream_table('l_exp.plain', 'SELECT id FROM l_src');
CREATE TEMP TABLE exported AS
SELECT st, pgtrickle.export_definition(st) AS def
  FROM (VALUES (1, 'l_exp."Export Me"'), (2, 'l_exp.plain')) AS v(n, st) ORDER BY n;
SELECT def FROM exported;
CREATE TEMP TABLE before AS
SELECT st, c.* FROM exported, pgt_catalog(st) c WHERE c.field <> 'original_query';
SELECT pgtrickle.drop_stream_table(st) FROM exported;
SELECT count(*) AS left_over FROM pg_class WHERE relnamespace = 'l_exp'::regnamespace;
SELECT def FROM exported \gexec
-- identical catalog rows (but original_query: now the deparsed query)
SELECT st, c.* FROM exported, pgt_catalog(st) c WHERE c.field <> 'original_query'
EXCEPT SELECT * FROM before;
SELECT * FROM before
EXCEPT SELECT st, c.* FROM exported, pgt_catalog(st) c WHERE c.field <> 'original_query';
SELECT pgt_check('l_exp."Export Me"'), pgt_check('l_exp.plain');
SELECT pg_temp.columns('l_exp."Export Me"');
-- and exporting the recreated one gives the same text
SELECT st, pgtrickle.export_definition(st) = def AS same_export FROM exported;
DROP SCHEMA l_exp CASCADE;

--
-- Refresh history.
--
SELECT pgtrickle.create_stream_table('l_hist', 'SELECT id, val FROM l_src WHERE id <= 4',
                                     refresh_mode => 'FULL');
DELETE FROM l_src WHERE id = 4;
SELECT pgtrickle.refresh_stream_table('l_hist');
INSERT INTO l_src VALUES (4, 'g1', 40), (0, 'g0', 0);
SELECT pgtrickle.refresh_stream_table('l_hist');
SELECT action, status, initiated_by, rows_inserted, rows_deleted, delta_row_count,
       was_full_fallback, fallback_reason, error_message,
       start_time <= end_time AS ordered, data_timestamp IS NOT NULL AS has_data_timestamp
  FROM pgtrickle.get_refresh_history('l_hist');
SELECT initiated_by FROM pgtrickle.get_refresh_history('l_hist', max_rows => 1);
SELECT count(*) FROM pgtrickle.get_refresh_history('l_hist', 0);
-- the catalog row records the latest refresh
SELECT s.last_refresh_at = h.start_time AS last_refresh_matches,
       s.data_timestamp = h.data_timestamp AS data_timestamp_matches,
       s.frontier IS NOT NULL AS has_frontier
  FROM pgtrickle.pgt_stream_tables s,
       LATERAL pgtrickle.get_refresh_history('l_hist', 1) h
 WHERE s.pgt_name = 'l_hist';
SELECT pgt_check('l_hist');
SELECT pgtrickle.drop_stream_table('l_hist');
-- a differential stream table: DIFFERENTIAL when there are changes,
-- NO_DATA when there are none, FULL after a TRUNCATE of a source
SELECT pgtrickle.create_stream_table('l_hist_diff', 'SELECT id, val FROM l_src',
                                     refresh_mode => 'DIFFERENTIAL');
DELETE FROM l_src WHERE id = 6;
SELECT pgtrickle.refresh_stream_table('l_hist_diff');
SELECT pgt_check('l_hist_diff');
SELECT pgtrickle.refresh_stream_table('l_hist_diff');
UPDATE l_src SET val = val + 1 WHERE id IN (1, 2);
INSERT INTO l_src VALUES (6, 'g0', 60);
SELECT pgtrickle.refresh_stream_table('l_hist_diff');
SELECT pgt_check('l_hist_diff');
CREATE TEMP TABLE l_src_copy AS SELECT * FROM l_src;
TRUNCATE l_src;
INSERT INTO l_src SELECT * FROM l_src_copy WHERE id <> 3;
SELECT pgtrickle.refresh_stream_table('l_hist_diff');
SELECT pgt_check('l_hist_diff');
INSERT INTO l_src SELECT * FROM l_src_copy WHERE id = 3;
SELECT action, status, initiated_by, rows_inserted, rows_deleted, delta_row_count,
       was_full_fallback, fallback_reason
  FROM pgtrickle.get_refresh_history('l_hist_diff');
SELECT pgtrickle.drop_stream_table('l_hist_diff');

--
-- Information functions.
--
SELECT pgtrickle.create_stream_table('l_info_full', 'SELECT id FROM l_src', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('l_info_auto', 'SELECT id FROM l_src');
SELECT * FROM pgtrickle.explain_refresh_mode('l_info_full');
SELECT * FROM pgtrickle.explain_refresh_mode('l_info_auto');
SELECT pgtrickle.drop_stream_table('l_info_full');
SELECT pgtrickle.drop_stream_table('l_info_auto');
SELECT s AS schedule, p.*
  FROM unnest(ARRAY['30s', '90', '1h30m', ' 2H ', '1d', '1w', '1h0m', '*/5 * * * *',
                    '0 9 * * mon-fri', '*/30 * * * * *', '@hourly', '@weekly',
                    'calculated', 'Calculated']) WITH ORDINALITY AS u(s, n),
       LATERAL pgtrickle.parse_schedule(s) p
 ORDER BY n;
SELECT pgt_try($$SELECT pgtrickle.parse_schedule('5x')$$);
SELECT pgt_try($$SELECT pgtrickle.parse_schedule('0 0 30 2 * * *')$$);
SELECT pgt_try($$SELECT pgtrickle.parse_schedule(NULL)$$);
SELECT pgtrickle.version();
SELECT pgtrickle.version() = extversion AS matches_extension
  FROM pg_extension WHERE extname = 'pg_trickle';

--
-- Ownership.
--
CREATE ROLE pgt_other LOGIN;
CREATE SCHEMA l_theirs;
GRANT USAGE, CREATE ON SCHEMA l_theirs TO pgt_other;
CREATE SCHEMA l_nocreate;
GRANT USAGE ON SCHEMA l_nocreate TO pgt_other;
CREATE TABLE l_secret (id int);
GRANT SELECT ON l_src TO pgt_other;
SELECT pgtrickle.create_stream_table('l_mine', 'SELECT id, val FROM l_src', refresh_mode => 'FULL');
SET ROLE pgt_other;
-- the API is usable without further grants (everything below runs so)
SELECT pgtrickle.version();
-- someone else's stream table: may be read about, not changed
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('l_mine')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('l_mine', schedule => '1m')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('l_mine', status => 'SUSPENDED')$$);
SELECT pgt_try($$SELECT pgtrickle.resume_stream_table('l_mine')$$);
SELECT pgt_try($$SELECT pgtrickle.drop_stream_table('l_mine')$$);
SELECT pgt_try($$SELECT pgtrickle.create_or_replace_stream_table('l_mine', 'SELECT id FROM l_src')$$);
SELECT pgt_try($$DROP TABLE l_mine$$);
SELECT pgt_try($$SELECT count(*) FROM l_mine$$);
SELECT * FROM pgtrickle.explain_refresh_mode('l_mine');
-- the catalog is readable, not writable
SELECT count(*) > 0 AS can_read FROM pgtrickle.pgt_stream_tables;
SELECT pgt_try($$INSERT INTO pgtrickle.pgt_stream_tables (pgt_relid, pgt_name, pgt_schema,
                   defining_query, original_query) VALUES (1, 'x', 'public', 'SELECT 1', 'SELECT 1')$$);
SELECT pgt_try($$UPDATE pgtrickle.pgt_stream_tables SET schedule = '1s'$$);
SELECT pgt_try($$DELETE FROM pgtrickle.pgt_stream_tables$$);
SELECT pgt_try($$DELETE FROM pgtrickle.pgt_refresh_history$$);
SELECT pgt_try($$INSERT INTO pgtrickle.pgt_dependencies VALUES (1, 1, 'TABLE')$$);
-- their own stream table, in a schema where they may create, on a table
-- they may read
SELECT pgtrickle.create_stream_table('l_theirs.st', 'SELECT id, val FROM l_src WHERE id > 2',
                                     refresh_mode => 'FULL');
SELECT pgt_check('l_theirs.st');
SELECT pgtrickle.refresh_stream_table('l_theirs.st');
SELECT pgtrickle.alter_stream_table('l_theirs.st', schedule => '2m');
SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = 'l_theirs.st'::regclass;
-- ... but not where they may not create, nor on a table they may not read
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('l_nocreate.st', 'SELECT id FROM l_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('public.l_theirs_public', 'SELECT id FROM l_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('l_theirs.st2', 'SELECT id FROM l_secret')$$);
-- and they cannot write to their own stream table directly either
SELECT pgt_try($$DELETE FROM l_theirs.st$$);
RESET ROLE;
-- Row-level security of a source that applies to the stream table's owner:
-- change capture cannot honour it, so DIFFERENTIAL is refused and AUTO is
-- refreshed FULL, which applies the policy as the owner (like REFRESH
-- MATERIALIZED VIEW) whoever runs the refresh.
CREATE TABLE l_rls (id int PRIMARY KEY, who text, v int);
ALTER TABLE l_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY l_rls_mine ON l_rls FOR SELECT USING (who = current_user);
GRANT SELECT ON l_rls TO pgt_other;
INSERT INTO l_rls VALUES (1, 'pgt_other', 10), (2, 'someone', 20);
SET ROLE pgt_other;
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('l_theirs.rls', 'SELECT id, v FROM l_rls',
                   refresh_mode => 'DIFFERENTIAL')$$);
SELECT pgtrickle.create_stream_table('l_theirs.rls', 'SELECT id, v FROM l_rls');
SELECT * FROM pgtrickle.explain_refresh_mode('l_theirs.rls');
SELECT id, v FROM l_theirs.rls ORDER BY id;
-- (pgt_check runs the query as pgt_other, under the policy)
SELECT pgt_check('l_theirs.rls');
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('l_theirs.rls', refresh_mode => 'DIFFERENTIAL')$$);
RESET ROLE;
SELECT * FROM pg_temp.capture('l_rls'::regclass);
INSERT INTO l_rls VALUES (3, 'someone', 30), (4, 'pgt_other', 40);
UPDATE l_rls SET v = 11 WHERE id = 1;
SELECT pgtrickle.refresh_stream_table('l_theirs.rls');
SELECT id, v FROM l_theirs.rls ORDER BY id;
SET ROLE pgt_other;
SELECT pgt_check('l_theirs.rls');
RESET ROLE;
DELETE FROM l_rls WHERE id = 4;
SET ROLE pgt_other;
SELECT pgtrickle.refresh_stream_table('l_theirs.rls');
SELECT id, v FROM l_theirs.rls ORDER BY id;
SELECT pgt_check('l_theirs.rls');
SELECT action, was_full_fallback, fallback_reason FROM pgtrickle.get_refresh_history('l_theirs.rls');
SELECT pgtrickle.drop_stream_table('l_theirs.rls');
RESET ROLE;
-- the policy does not apply to the table's owner: its stream table may be
-- DIFFERENTIAL
SELECT pgtrickle.create_stream_table('l_rls_owner', 'SELECT id, v FROM l_rls',
                                     refresh_mode => 'DIFFERENTIAL');
INSERT INTO l_rls VALUES (5, 'someone', 50);
SELECT pgtrickle.refresh_stream_table('l_rls_owner');
SELECT id, v FROM l_rls_owner ORDER BY id;
SELECT action FROM pgtrickle.get_refresh_history('l_rls_owner', 1);
SELECT pgt_check('l_rls_owner');
SELECT pgtrickle.drop_stream_table('l_rls_owner');
-- row-level security enabled after a differential stream table was
-- created: its refreshes are FULL from then on, and say why
CREATE TABLE l_rls_late (id int PRIMARY KEY, who text, v int);
-- (TRIGGER: a differential stream table puts triggers on its sources)
GRANT SELECT, TRIGGER ON l_rls_late TO pgt_other;
INSERT INTO l_rls_late VALUES (1, 'pgt_other', 10), (2, 'someone', 20);
SET ROLE pgt_other;
SELECT pgtrickle.create_stream_table('l_theirs.late', 'SELECT id, v FROM l_rls_late',
                                     refresh_mode => 'DIFFERENTIAL');
RESET ROLE;
ALTER TABLE l_rls_late ENABLE ROW LEVEL SECURITY;
CREATE POLICY l_rls_late_mine ON l_rls_late FOR SELECT USING (who = current_user);
INSERT INTO l_rls_late VALUES (3, 'someone', 30), (4, 'pgt_other', 40);
SELECT pgtrickle.refresh_stream_table('l_theirs.late');
SELECT id, v FROM l_theirs.late ORDER BY id;
SELECT action, was_full_fallback, fallback_reason FROM pgtrickle.get_refresh_history('l_theirs.late', 1);
SET ROLE pgt_other;
SELECT pgt_check('l_theirs.late');
SELECT pgtrickle.drop_stream_table('l_theirs.late');
RESET ROLE;
DROP TABLE l_rls, l_rls_late;
-- a table they may not read stays unreadable: no stream table on it, even
-- an uninitialized one, and no change buffer that shows its rows
CREATE FUNCTION pg_temp.read_buffer(src regclass, cols text DEFAULT '*')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class
                    WHERE relnamespace = 'pgtrickle_changes'::regnamespace
                      AND relname = 'changes_' || src::oid) THEN
        RETURN 'no change buffer';
    END IF;
    EXECUTE format('SELECT count(*) FROM (SELECT %s FROM pgtrickle_changes.%I) b',
                   cols, 'changes_' || src::oid) INTO n;
    RETURN format('change buffer readable: %s row(s)', n);
EXCEPTION WHEN insufficient_privilege THEN
    RETURN 'change buffer not readable';
END
$$;
SET ROLE pgt_other;
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('l_theirs.peek', 'SELECT id FROM l_secret',
                   refresh_mode => 'DIFFERENTIAL', initialize => false)$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('l_theirs.peek', 'SELECT id FROM l_secret',
                   refresh_mode => 'FULL', initialize => false)$$);
RESET ROLE;
SELECT * FROM pg_temp.capture('l_secret'::regclass);
INSERT INTO l_secret VALUES (42);
SET ROLE pgt_other;
SELECT pg_temp.read_buffer('l_secret');
RESET ROLE;
SELECT pgtrickle.drop_stream_table('l_theirs.peek') FROM pgtrickle.pgt_stream_tables
 WHERE pgt_schema = 'l_theirs' AND pgt_name = 'peek';
-- privileges on columns count: only the columns they may read
CREATE TABLE l_cols (id int, secret text);
INSERT INTO l_cols VALUES (1, 'x');
GRANT SELECT (id) ON l_cols TO pgt_other;
GRANT TRIGGER ON l_cols TO pgt_other;
SET ROLE pgt_other;
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('l_theirs.cols', 'SELECT id, secret FROM l_cols',
                   refresh_mode => 'DIFFERENTIAL', initialize => false)$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('l_theirs.cols',
                   'SELECT id FROM l_cols WHERE secret IS NOT NULL', initialize => false)$$);
SELECT pgtrickle.create_stream_table('l_theirs.cols', 'SELECT id FROM l_cols',
                                     refresh_mode => 'DIFFERENTIAL');
RESET ROLE;
-- a stream table of the superuser reads the other column too, so that is
-- captured as well; the change buffer must not show it to them
SELECT pgtrickle.create_stream_table('l_cols_all', 'SELECT id, secret FROM l_cols',
                                     refresh_mode => 'DIFFERENTIAL');
INSERT INTO l_cols VALUES (2, 'y');
SET ROLE pgt_other;
SELECT pgtrickle.refresh_stream_table('l_theirs.cols');
SELECT id FROM l_theirs.cols ORDER BY id;
SELECT pgt_check('l_theirs.cols');
SELECT pg_temp.read_buffer('l_cols', 'secret');
SELECT pgtrickle.drop_stream_table('l_theirs.cols');
RESET ROLE;
-- nor, once their stream table is gone, any later change
INSERT INTO l_cols VALUES (3, 'z');
SET ROLE pgt_other;
SELECT pg_temp.read_buffer('l_cols', 'id');
RESET ROLE;
SELECT pgtrickle.drop_stream_table('l_cols_all');
DROP TABLE l_cols;
-- the superuser may refresh it; the refresh runs as its owner, so it fails
-- once the owner may no longer read the source
SELECT pgtrickle.refresh_stream_table('l_theirs.st');
REVOKE SELECT ON l_src FROM pgt_other;
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('l_theirs.st')$$);
GRANT SELECT ON l_src TO pgt_other;
SELECT pgt_check('l_theirs.st');
-- a query change by the superuser that rebuilds the storage table leaves
-- it with its owner
SELECT pgtrickle.alter_stream_table('l_theirs.st', query => 'SELECT id, grp, val FROM l_src WHERE id > 2');
SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = 'l_theirs.st'::regclass;
SET ROLE pgt_other;
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('l_theirs.st')$$);
RESET ROLE;
-- clean up: their objects first, then the role
SELECT pgtrickle.drop_stream_table('l_theirs.st');
DROP OWNED BY pgt_other;
DROP ROLE pgt_other;
DROP SCHEMA l_theirs, l_nocreate;
SELECT pgtrickle.drop_stream_table('l_mine');
DROP TABLE l_secret;
SELECT count(*) AS l_stream_tables_left FROM pgtrickle.pgt_stream_tables
 WHERE pgt_name LIKE 'l\_%' OR pgt_schema LIKE 'l\_%';
SELECT * FROM pg_temp.unneeded_capture();
