--
-- api_errors: every kind of bad input, with its SQLSTATE.  Each failing call
-- goes through pgt_try(), which prints the SQLSTATE, message, DETAIL and HINT
-- and then whether the call left anything behind (relations, triggers,
-- dependencies, types or catalog rows).
--
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE e_src (id int PRIMARY KEY, v text);
INSERT INTO e_src VALUES (1, 'a'), (2, 'b'), (3, NULL);
CREATE TABLE e_keep (x int);        -- target of the injection attempts
INSERT INTO e_keep VALUES (42);
CREATE TABLE e_plain (x int);       -- a table that is not a stream table
SELECT pgtrickle.create_stream_table('e_st', 'SELECT id, v FROM e_src',
                                     refresh_mode => 'FULL');
CREATE TEMP TABLE baseline AS
SELECT (SELECT count(*) FROM pgtrickle.pgt_stream_tables) AS stream_tables,
       (SELECT count(*) FROM pg_trigger) AS triggers;

--
-- The query.
--
-- syntax errors
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT FROM WHERE')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELEC id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', '')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', ';')$$);
-- statements other than SELECT
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'INSERT INTO e_src VALUES (9, ''z'')')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'UPDATE e_src SET v = ''z''')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'DELETE FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'CREATE TABLE e_bad2 (a int)')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'EXPLAIN SELECT 1')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT 1 AS a; SELECT 2 AS a')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT 1 AS a INTO e_into')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad',
    'WITH d AS (DELETE FROM e_src RETURNING *) SELECT id FROM d')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad',
    'WITH d AS (SELECT id FROM e_src) INSERT INTO e_plain SELECT id FROM d')$$);
SELECT count(*) AS e_src_rows FROM e_src;      -- the DELETE did not run
SELECT count(*) AS e_plain_rows FROM e_plain;  -- nor the INSERT
-- VALUES and TABLE are queries, and are accepted
SELECT pgtrickle.create_stream_table('e_values', 'VALUES (1, ''x''), (2, NULL)',
                                     refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('e_table', 'TABLE e_src', refresh_mode => 'FULL');
SELECT pgt_check('e_values'), pgt_check('e_table');
SELECT column1, column2 FROM e_values ORDER BY column1;
SELECT pgtrickle.drop_stream_table('e_values');
SELECT pgtrickle.drop_stream_table('e_table');
-- unknown relation, column, function, parameter
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT a FROM no_such_table')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT no_such_col FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT no_such_fn(id) FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT $1::int AS a')$$);
-- a query naming its own stream table, which does not exist yet
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT * FROM e_bad')$$);
-- NULL query
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', NULL)$$);
-- locking clauses
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src FOR UPDATE')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src FOR SHARE')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad',
    'SELECT id FROM (SELECT id FROM e_src FOR KEY SHARE) s')$$);
-- LIMIT and OFFSET need ORDER BY, at every query level
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src LIMIT 2')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src OFFSET 1')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad',
    'SELECT id FROM e_src FETCH FIRST 1 ROW ONLY')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad',
    'SELECT s.id FROM (SELECT id FROM e_src LIMIT 1) s')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad',
    'SELECT id FROM e_src WHERE id IN (SELECT id FROM e_src LIMIT 1)')$$);
-- ... and with ORDER BY they are accepted; LIMIT ALL needs nothing
SELECT pgtrickle.create_stream_table('e_top2', 'SELECT id, v FROM e_src ORDER BY id DESC LIMIT 2',
                                     refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('e_skip1', 'SELECT id FROM e_src ORDER BY id OFFSET 1',
                                     refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('e_limit_all', 'SELECT id FROM e_src LIMIT ALL',
                                     refresh_mode => 'FULL');
SELECT id, v FROM e_top2 ORDER BY id;
SELECT id FROM e_skip1 ORDER BY id;
SELECT count(*) FROM e_limit_all;
SELECT pgt_check('e_top2'), pgt_check('e_skip1'), pgt_check('e_limit_all');
SELECT pgtrickle.drop_stream_table('e_top2');
SELECT pgtrickle.drop_stream_table('e_skip1');
SELECT pgtrickle.drop_stream_table('e_limit_all');
-- TABLESAMPLE
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad',
    'SELECT id FROM e_src TABLESAMPLE SYSTEM (50)')$$);
-- temporary relations, directly, through a temporary view, in a subquery
CREATE TEMP TABLE e_temp (id int);
CREATE TEMP VIEW e_temp_view AS SELECT id FROM e_src;
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_temp')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_temp_view')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad',
    'SELECT id FROM e_src WHERE EXISTS (SELECT 1 FROM e_temp)')$$);
DROP VIEW e_temp_view;
-- a stream table in a temporary schema
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('pg_temp.e_bad', 'SELECT id FROM e_src')$$);
-- a sequence is not a source
CREATE SEQUENCE e_seq;
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT last_value FROM e_seq')$$);
-- output columns: duplicate names, reserved names, pseudo-types, none at all
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id, id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT 1, 2')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id AS __pgt_row_id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id AS __pgt_mine FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT ROW(1, 2) AS r')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT FROM e_src')$$);
-- DIFFERENTIAL cannot be honoured for a volatile query
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad',
    'SELECT id, random() AS r FROM e_src', refresh_mode => 'DIFFERENTIAL')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad',
    'SELECT id, random() AS r FROM e_src', refresh_mode => 'IMMEDIATE')$$);

--
-- The name.
--
SELECT pgt_try($$SELECT pgtrickle.create_stream_table(NULL, 'SELECT id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('', 'SELECT id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('no_such_schema.e_bad', 'SELECT id FROM e_src')$$);
-- names already taken: a stream table, a table, an index, a sequence
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_st', 'SELECT id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_plain', 'SELECT id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_src_pkey', 'SELECT id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_seq', 'SELECT id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table_if_not_exists('e_plain', 'SELECT id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_or_replace_stream_table('e_plain', 'SELECT id FROM e_src')$$);
SELECT x FROM e_plain;     -- untouched
-- SQL injection through the name: nothing is executed, nothing dropped
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('x; DROP TABLE e_keep', 'SELECT id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('x''; DROP TABLE e_keep; --', 'SELECT id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('x"; DROP TABLE e_keep; --', 'SELECT id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('a.b.c.d', 'SELECT id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('a.b.c', 'SELECT id FROM e_src')$$);
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('e_st; DROP TABLE e_keep')$$);
SELECT pgt_try($$SELECT pgtrickle.drop_stream_table('e_st; DROP TABLE e_keep')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_st; DROP TABLE e_keep', schedule => '1m')$$);
SELECT x FROM e_keep;
-- a quoted name may hold anything; it is only ever a name
SELECT pgtrickle.create_stream_table('"x; DROP TABLE e_keep; --"', 'SELECT id AS "a""b" FROM e_src',
                                     refresh_mode => 'FULL');
SELECT relname FROM pg_class WHERE relname LIKE 'x;%';
SELECT "a""b" FROM "x; DROP TABLE e_keep; --" ORDER BY 1;
SELECT pgt_check('"x; DROP TABLE e_keep; --"');
SELECT pgtrickle.refresh_stream_table('"x; DROP TABLE e_keep; --"');
SELECT pgtrickle.drop_stream_table('"x; DROP TABLE e_keep; --"');
SELECT x FROM e_keep;
-- an unquoted name is read like a regclass literal: everything up to a dot
-- or whitespace is the name (here "e_st)"), and it too is only a name
SELECT pgtrickle.create_stream_table('e_st)', 'SELECT id FROM e_src', refresh_mode => 'FULL');
SELECT 'e_st)'::regclass, pgt_check('"e_st)"');
SELECT pgtrickle.drop_stream_table('e_st)');

--
-- Settings.
--
-- schedules
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', schedule => '5x')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', schedule => '-1m')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', schedule => '')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', schedule => NULL)$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', schedule => '0s')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', schedule => '1.5h')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', schedule => '61 * * * *')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', schedule => '* * * *')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', schedule => '@never')$$);
-- refresh modes
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', refresh_mode => 'FAST')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', refresh_mode => '')$$);
-- (NULL is the default, AUTO)
SELECT pgtrickle.create_stream_table('e_null_mode', 'SELECT id FROM e_src', refresh_mode => NULL);
SELECT refresh_mode FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'e_null_mode';
SELECT pgtrickle.drop_stream_table('e_null_mode');
-- the other settings
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', diamond_consistency => 'strict')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', diamond_schedule_policy => 'median')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', cdc_mode => 'logical')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', cdc_mode => 'wal')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', partition_by => 'id')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', max_differential_joins => -1)$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', max_delta_fraction => 0)$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('e_bad', 'SELECT id FROM e_src', max_delta_fraction => 'NaN')$$);
-- the same checks in alter_stream_table, which changes nothing when it fails
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_st', schedule => '5x')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_st', schedule => '1m', refresh_mode => 'FAST')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_st', status => 'PAUSED')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_st', cdc_mode => 'wal')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_st', partition_by => 'id')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_st', max_differential_joins => -5)$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_st', tier => 'hot')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_st', fuse => 'on')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_st', query => 'SELECT id FROM e_src LIMIT 1')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_st', query => 'SELECT nope FROM e_src')$$);
SELECT * FROM pgt_catalog('e_st');
SELECT pgt_check('e_st');

--
-- Cycles between stream tables.
--
SELECT pgtrickle.create_stream_table('e_a', 'SELECT id FROM e_src', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('e_b', 'SELECT id FROM e_a', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('e_c', 'SELECT id FROM e_b', refresh_mode => 'FULL');
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_a', query => 'SELECT id FROM e_c')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_a', query => 'SELECT id FROM e_b')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_a', query => 'SELECT id FROM e_a')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_a',
    query => 'SELECT id FROM e_src WHERE id IN (SELECT id FROM e_c)')$$);
SELECT pgt_try($$SELECT pgtrickle.create_or_replace_stream_table('e_a', 'SELECT id FROM e_a')$$);
SELECT pgt_try($$SELECT pgtrickle.create_or_replace_stream_table('e_a', 'SELECT id FROM e_c')$$);
-- still a chain: e_src -> e_a -> e_b -> e_c
SELECT s.pgt_name, d.source_relid::regclass AS source, d.source_type
  FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
 WHERE s.pgt_name IN ('e_a', 'e_b', 'e_c') ORDER BY s.pgt_id;
SELECT defining_query FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'e_a';
SELECT pgt_check('e_a'), pgt_check('e_b'), pgt_check('e_c');

--
-- Writing to a stream table directly.
--
SELECT pgt_try($$INSERT INTO e_st VALUES (9, 'z', 0)$$);
SELECT pgt_try($$UPDATE e_st SET v = 'z'$$);
SELECT pgt_try($$DELETE FROM e_st$$);
SELECT pgt_try($$TRUNCATE e_st$$);
SELECT pgt_try($$INSERT INTO e_st SELECT * FROM e_st ON CONFLICT DO NOTHING$$);
SELECT pgt_try($$MERGE INTO e_st t USING e_src s ON t.id = s.id
                 WHEN MATCHED THEN UPDATE SET v = 'z'$$);
SELECT pgt_try($$MERGE INTO e_st t USING e_src s ON t.id = s.id
                 WHEN MATCHED THEN DELETE$$);
SELECT pgt_try($$WITH d AS (DELETE FROM e_st RETURNING *) SELECT count(*) FROM d$$);
-- even when no row would change
SELECT pgt_try($$DELETE FROM e_st WHERE false$$);
COPY e_st FROM STDIN;
9	z	0
\.
SELECT count(*) AS e_st_rows FROM e_st;
SELECT pgt_check('e_st');

--
-- Dropping a source is refused while a stream table reads it.
--
SELECT pgt_try($$DROP TABLE e_src$$);
SELECT count(*) FROM e_src;
-- renaming a source is refused too (pg_trickle.block_source_ddl is on by
-- default)
SELECT pgt_try($$ALTER TABLE e_src RENAME TO e_src_renamed$$);
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('e_st')$$);
-- with it off the rename goes through, and refreshes fail until it is undone
SET pg_trickle.block_source_ddl = off;
ALTER TABLE e_src RENAME TO e_src_renamed;
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('e_st')$$);
-- (the error must not point into the caller's statement text)
SELECT pgtrickle.refresh_stream_table('e_st');
ALTER TABLE e_src_renamed RENAME TO e_src;
RESET pg_trickle.block_source_ddl;
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('e_st')$$);

-- Changing the columns of a source under a stream table (pg_trickle.
-- block_source_ddl is on by default), or of the stream table itself.
BEGIN;
SELECT pgt_try($$ALTER TABLE e_src DROP COLUMN v$$);
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('e_st')$$);
ROLLBACK;
BEGIN;
SELECT pgt_try($$ALTER TABLE e_src ALTER COLUMN v TYPE int USING length(v)$$);
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('e_st')$$);
ROLLBACK;
BEGIN;
SELECT pgt_try($$ALTER TABLE e_st RENAME COLUMN v TO w$$);
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('e_st')$$);
ROLLBACK;
BEGIN;
SELECT pgt_try($$ALTER TABLE e_st ADD COLUMN extra int$$);
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('e_st')$$);
ROLLBACK;
-- adding a column to a source breaks nothing, and is allowed
BEGIN;
SELECT pgt_try($$ALTER TABLE e_src ADD COLUMN extra int$$);
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('e_st')$$);
ROLLBACK;
SELECT pgt_check('e_st');

--
-- Functions given a name that is not a stream table, or does not exist.
--
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('e_plain')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('e_plain', schedule => '1m')$$);
SELECT pgt_try($$SELECT pgtrickle.drop_stream_table('e_plain')$$);
SELECT pgt_try($$SELECT pgtrickle.resume_stream_table('e_plain')$$);
SELECT pgt_try($$SELECT pgtrickle.export_definition('e_plain')$$);
SELECT pgt_try($$SELECT pgtrickle.explain_refresh_mode('e_plain')$$);
SELECT pgt_try($$SELECT * FROM pgtrickle.get_refresh_history('e_plain')$$);
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('e_src_pkey')$$);
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('no_such_st')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('no_such_st', schedule => '1m')$$);
SELECT pgt_try($$SELECT pgtrickle.drop_stream_table('no_such_st')$$);
SELECT pgt_try($$SELECT pgtrickle.resume_stream_table('no_such_st')$$);
SELECT pgt_try($$SELECT pgtrickle.export_definition('no_such_schema.no_such_st')$$);
SELECT pgt_try($$SELECT pgtrickle.explain_refresh_mode('no_such_st')$$);
SELECT pgt_try($$SELECT * FROM pgtrickle.get_refresh_history('no_such_st')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table(NULL, schedule => '1m')$$);
SELECT x FROM e_plain;
-- refresh is STRICT: a NULL name does nothing; drop refuses NULLs
SELECT pgtrickle.refresh_stream_table(NULL) IS NULL AS refresh_null;
SELECT pgt_try($$SELECT pgtrickle.drop_stream_table(NULL)$$);
SELECT pgt_try($$SELECT pgtrickle.drop_stream_table('e_st', cascade => NULL)$$);
SELECT count(*) AS e_st_exists FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'e_st';

--
-- Nothing was left behind by any failure above.
--
SELECT count(*) AS relations_named_e_bad FROM pg_class WHERE relname LIKE 'e\_bad%';
SELECT (SELECT count(*) FROM pgtrickle.pgt_stream_tables) - stream_tables AS new_stream_tables,
       (SELECT count(*) FROM pg_trigger) - triggers AS new_triggers
  FROM baseline;
SELECT format('%I.%I', pgt_schema, pgt_name) AS st FROM pgtrickle.pgt_stream_tables
 WHERE pgt_name LIKE 'e\_%' ORDER BY pgt_id;

DROP TABLE e_a, e_b, e_c;
SELECT pgtrickle.drop_stream_table('e_st');
DROP TABLE e_src, e_keep, e_plain;
DROP SEQUENCE e_seq;
SELECT count(*) AS stream_tables_left FROM pgtrickle.pgt_stream_tables WHERE pgt_name LIKE 'e\_%';
