--
-- safety_misc: smaller defects of issue 12 (item 9), each at its cause.
--

-- (a) The reason a DIFFERENTIAL refresh fell back to FULL, when the query
-- cannot be maintained differentially any more, is recorded intact (it was
-- read after the memory holding it had been freed).  Row-level security
-- enabled on a source after creation is such a reason for an owner who
-- does not own the source.  The query is wide so that the analysis fills
-- more memory than SPI's first block, and the freed block is reused.
CREATE ROLE pgt_misc_owner;
GRANT CREATE ON SCHEMA public TO pgt_misc_owner;
CREATE TABLE misc_rls_src (id int PRIMARY KEY, v int);
INSERT INTO misc_rls_src SELECT g, g * 10 FROM generate_series(1, 5) g;
GRANT SELECT, TRIGGER ON misc_rls_src TO pgt_misc_owner;
SET ROLE pgt_misc_owner;
SELECT pgtrickle.create_stream_table('misc_rls_st', 'SELECT id, v, v + 1 AS c1, v + 2 AS c2, v + 3 AS c3, v + 4 AS c4, v + 5 AS c5, v + 6 AS c6, v + 7 AS c7, v + 8 AS c8, v + 9 AS c9, v + 10 AS c10, v + 11 AS c11, v + 12 AS c12, v + 13 AS c13, v + 14 AS c14, v + 15 AS c15, v + 16 AS c16, v + 17 AS c17, v + 18 AS c18, v + 19 AS c19, v + 20 AS c20, v + 21 AS c21, v + 22 AS c22, v + 23 AS c23, v + 24 AS c24, v + 25 AS c25, v + 26 AS c26, v + 27 AS c27, v + 28 AS c28, v + 29 AS c29, v + 30 AS c30, v + 31 AS c31, v + 32 AS c32, v + 33 AS c33, v + 34 AS c34, v + 35 AS c35, v + 36 AS c36, v + 37 AS c37, v + 38 AS c38, v + 39 AS c39, v + 40 AS c40, v + 41 AS c41, v + 42 AS c42, v + 43 AS c43, v + 44 AS c44, v + 45 AS c45, v + 46 AS c46, v + 47 AS c47, v + 48 AS c48, v + 49 AS c49, v + 50 AS c50, v + 51 AS c51, v + 52 AS c52, v + 53 AS c53, v + 54 AS c54, v + 55 AS c55, v + 56 AS c56, v + 57 AS c57, v + 58 AS c58, v + 59 AS c59, v + 60 AS c60, v + 61 AS c61, v + 62 AS c62, v + 63 AS c63, v + 64 AS c64, v + 65 AS c65, v + 66 AS c66, v + 67 AS c67, v + 68 AS c68, v + 69 AS c69, v + 70 AS c70, v + 71 AS c71, v + 72 AS c72, v + 73 AS c73, v + 74 AS c74, v + 75 AS c75, v + 76 AS c76, v + 77 AS c77, v + 78 AS c78, v + 79 AS c79, v + 80 AS c80 FROM misc_rls_src',
                                     schedule => '1h', refresh_mode => 'DIFFERENTIAL');
RESET ROLE;
ALTER TABLE misc_rls_src ENABLE ROW LEVEL SECURITY;
CREATE POLICY misc_all ON misc_rls_src USING (true);
INSERT INTO misc_rls_src VALUES (6, 60);
SET ROLE pgt_misc_owner;
SELECT pgtrickle.refresh_stream_table('misc_rls_st');
RESET ROLE;
SELECT action, was_full_fallback, fallback_reason
  FROM pgtrickle.pgt_refresh_history
 WHERE pgt_id = (SELECT pgt_id FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'misc_rls_st')
 ORDER BY refresh_id DESC LIMIT 1;
SELECT pgt_check('misc_rls_st');
SELECT pgtrickle.drop_stream_table('misc_rls_st');
DROP TABLE misc_rls_src;
REVOKE CREATE ON SCHEMA public FROM pgt_misc_owner;
DROP ROLE pgt_misc_owner;

-- (b) health_check() checks each source for the triggers its readers
-- need: capture triggers for DIFFERENTIAL readers, IMMEDIATE maintenance
-- triggers for IMMEDIATE readers (a source read only by IMMEDIATE stream
-- tables has no capture triggers, and that is right).
CREATE TABLE misc_imm_src (id int PRIMARY KEY, g int);
CREATE TABLE misc_diff_src (id int PRIMARY KEY, g int);
INSERT INTO misc_imm_src VALUES (1, 1), (2, 1), (3, 2);
INSERT INTO misc_diff_src VALUES (1, 1);
SELECT pgtrickle.create_stream_table('misc_imm_st',
    'SELECT g, count(*) AS n FROM misc_imm_src GROUP BY g', schedule => NULL,
    refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('misc_imm_chain',
    'SELECT g, n FROM misc_imm_st WHERE n > 1', schedule => NULL,
    refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('misc_diff_st',
    'SELECT g, count(*) AS n FROM misc_diff_src GROUP BY g', schedule => '1h',
    refresh_mode => 'DIFFERENTIAL');
SELECT check_name, severity, detail FROM pgtrickle.health_check()
 WHERE check_name = 'capture_triggers';
-- each kind of missing trigger is found, and named for what it is
SET pg_trickle.block_source_ddl = off;
DROP TRIGGER __pgt_ivm_ins ON misc_imm_src;
DROP TRIGGER __pgt_cdc_ins ON misc_diff_src;
SELECT check_name, severity, detail FROM pgtrickle.health_check()
 WHERE check_name = 'capture_triggers';
RESET pg_trickle.block_source_ddl;
SELECT pgtrickle.drop_stream_table('misc_imm_chain');
SELECT pgtrickle.drop_stream_table('misc_imm_st');
SELECT pgtrickle.drop_stream_table('misc_diff_st');
DROP TABLE misc_imm_src, misc_diff_src;

-- (d) change_buffer_sizes() is open to every role, as documented: it
-- shows every change buffer's source, row count and size (no contents;
-- pg_stat_all_tables and pg_total_relation_size tell any role as much).
CREATE ROLE pgt_misc_nobody;
CREATE TABLE misc_buf_src (id int PRIMARY KEY);
SELECT pgtrickle.create_stream_table('misc_buf_st', 'SELECT id FROM misc_buf_src',
    schedule => '1h', refresh_mode => 'DIFFERENTIAL');
INSERT INTO misc_buf_src VALUES (1), (2);
SET ROLE pgt_misc_nobody;
SELECT source_table, buffered_rows, buffer_bytes > 0 AS has_size
  FROM pgtrickle.change_buffer_sizes() WHERE source_table = 'misc_buf_src'::regclass;
-- the buffers themselves stay closed to it
SELECT pgt_try($$SELECT count(*) FROM pgtrickle_changes.changes_$$ ||
               'misc_buf_src'::regclass::oid);
RESET ROLE;
SELECT pgtrickle.drop_stream_table('misc_buf_st');
DROP TABLE misc_buf_src;
DROP ROLE pgt_misc_nobody;

-- (e) A stream table name longer than NAMEDATALEN - 1 bytes is truncated
-- with PostgreSQL's NOTICE 42622, once per call, by every function taking
-- a name (as CREATE TABLE does), and the long name finds the truncated
-- table.  Quoted, schema-qualified and multibyte names too.
CREATE TABLE misc_long_src (id int PRIMARY KEY, v int);
INSERT INTO misc_long_src VALUES (1, 10), (2, 20);
-- what CREATE TABLE says, and its SQLSTATE
CREATE TABLE misc_a_very_long_plain_table_name_that_is_longer_than_sixty_three_bytes ();
\set VERBOSITY sqlstate
DROP TABLE misc_a_very_long_plain_table_name_that_is_longer_than_sixty_three_bytes;
SELECT pgtrickle.create_stream_table(
    'misc_a_very_long_stream_table_name_that_is_longer_than_sixty_three_bytes',
    'SELECT id, v FROM misc_long_src', schedule => '1h', refresh_mode => 'DIFFERENTIAL');
\set VERBOSITY default
SELECT relname, length(relname) FROM pg_class
 WHERE relname LIKE 'misc\_a\_very\_long%' AND relkind = 'r';
SELECT pgtrickle.create_or_replace_stream_table(
    'public.misc_a_very_long_stream_table_name_that_is_longer_than_sixty_three_bytes',
    'SELECT id, v FROM misc_long_src', schedule => '1h', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table_if_not_exists(
    'misc_a_very_long_stream_table_name_that_is_longer_than_sixty_three_bytes',
    'SELECT id, v FROM misc_long_src');
INSERT INTO misc_long_src VALUES (3, 30);
SELECT pgtrickle.refresh_stream_table(
    'misc_a_very_long_stream_table_name_that_is_longer_than_sixty_three_bytes');
SELECT pgtrickle.alter_stream_table(
    'misc_a_very_long_stream_table_name_that_is_longer_than_sixty_three_bytes',
    schedule => '2h');
SELECT pgtrickle.get_staleness(
    'misc_a_very_long_stream_table_name_that_is_longer_than_sixty_three_bytes') >= 0 AS staleness_known;
SELECT column_name FROM pgtrickle.list_auxiliary_columns(
    'misc_a_very_long_stream_table_name_that_is_longer_than_sixty_three_bytes');
SELECT action, rows_inserted FROM pgtrickle.get_refresh_history(
    'misc_a_very_long_stream_table_name_that_is_longer_than_sixty_three_bytes', 1);
SELECT pgt_check('misc_a_very_long_stream_table_name_that_is_longer_than_sixty_thre');
-- quoted: case and spaces kept, truncated the same way
SELECT pgtrickle.create_stream_table(
    '"Misc A Very Long Quoted Stream Table Name, Longer Than Sixty-Three Bytes"',
    'SELECT id FROM misc_long_src', schedule => '1h', refresh_mode => 'FULL');
SELECT pgt_check('"Misc A Very Long Quoted Stream Table Name, Longer Than Sixty-Thr"');
SELECT pgtrickle.drop_stream_table(
    '"Misc A Very Long Quoted Stream Table Name, Longer Than Sixty-Three Bytes"');
-- multibyte: cut at a character boundary (each 'é' is two bytes)
SELECT pgtrickle.create_stream_table(
    'misc_' || repeat('é', 40), 'SELECT id FROM misc_long_src', schedule => '1h',
    refresh_mode => 'FULL');
SELECT relname, octet_length(relname) FROM pg_class
 WHERE relname LIKE 'misc\_é%' AND relkind = 'r';
SELECT pgtrickle.drop_stream_table('misc_' || repeat('é', 40));
-- a long schema name is truncated too (and then does not exist)
SELECT pgt_try($$SELECT pgtrickle.drop_stream_table(
    'misc_a_very_long_schema_name_that_is_longer_than_sixty_three_bytes_too.x')$$);
SELECT pgtrickle.drop_stream_table(
    'misc_a_very_long_stream_table_name_that_is_longer_than_sixty_three_bytes');
DROP TABLE misc_long_src;

-- (f) In a read-only transaction the functions that change a stream table
-- fail with 25006 naming it (t/040_standby.pl covers a hot standby).
CREATE TABLE misc_ro_src (id int);
SELECT pgtrickle.create_stream_table('misc_ro_st', 'SELECT id FROM misc_ro_src',
    schedule => '1h', refresh_mode => 'DIFFERENTIAL');
BEGIN READ ONLY;
SELECT pgt_try($$SELECT pgtrickle.refresh_stream_table('misc_ro_st')$$);
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('misc_ro_st', schedule => '2h')$$);
SELECT pgt_try($$SELECT pgtrickle.drop_stream_table('misc_ro_st')$$);
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('misc_ro_st2', 'SELECT 1 AS x')$$);
SELECT pgt_try($$SELECT pgtrickle.resume_stream_table('misc_ro_st')$$);
SELECT pgt_try($$SELECT pgtrickle.repair_stream_table('misc_ro_st')$$);
-- reading is fine
SELECT name, status FROM pgtrickle.pgt_status() WHERE name = 'public.misc_ro_st';
COMMIT;
SELECT pgtrickle.drop_stream_table('misc_ro_st');
DROP TABLE misc_ro_src;
