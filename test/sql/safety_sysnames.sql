--
-- safety_sysnames: output columns named like a system column of a heap
-- table (issue 12, item 10c).  The storage table could not be created, so
-- analysis refuses them in every mode, before anything is made: 42701,
-- naming the column, with a HINT; validate_query says the same.  "oid" is
-- an ordinary column name since PostgreSQL 12.
--
SET client_min_messages = warning;

CREATE TABLE sn_src (id int PRIMARY KEY, v int);
INSERT INTO sn_src VALUES (1, 10), (2, 20);
CREATE VIEW sn_view AS SELECT id AS xmax, v FROM sn_src;

SELECT name, v.valid, v.differential, v.reason
  FROM unnest(ARRAY['ctid', 'xmin', 'cmin', 'xmax', 'cmax', 'tableoid']) name,
       LATERAL pgtrickle.validate_query(format('SELECT id AS %I, v FROM sn_src', name)) v;
SELECT * FROM pgtrickle.validate_query('SELECT * FROM sn_view');

SELECT name, m, (SELECT string_agg(r, ' | ') FROM pgt_try(format(
         'SELECT pgtrickle.create_stream_table(%L, %L, refresh_mode => %L)',
         'sn_' || name || '_' || lower(m), format('SELECT id AS %I, v FROM sn_src', name), m)) r) AS outcome
  FROM unnest(ARRAY['ctid', 'xmin', 'cmin', 'xmax', 'cmax', 'tableoid']) name,
       unnest(ARRAY['FULL', 'AUTO', 'DIFFERENTIAL', 'IMMEDIATE']) m
 ORDER BY 1, 2;
-- through a view's column, and by a change of query
SELECT pgt_try($$SELECT pgtrickle.create_stream_table('sn_v', 'SELECT * FROM sn_view')$$);
SELECT pgtrickle.create_stream_table('sn_ok', 'SELECT id AS xmin_, v FROM sn_src',
                                     refresh_mode => 'DIFFERENTIAL');
SELECT pgt_try($$SELECT pgtrickle.alter_stream_table('sn_ok', query => 'SELECT id AS cmax, v FROM sn_src')$$);
SELECT pgt_check('sn_ok');

-- "oid" works in every mode
SELECT m, pgtrickle.create_stream_table('sn_oid_' || lower(m), 'SELECT id AS oid, v FROM sn_src',
                                        refresh_mode => m)
  FROM unnest(ARRAY['FULL', 'AUTO', 'DIFFERENTIAL', 'IMMEDIATE']) m;
INSERT INTO sn_src VALUES (3, 30);
UPDATE sn_src SET v = 11 WHERE id = 1;
SELECT pgt_check('sn_oid_immediate');
SELECT s.pgt_name, r.action, r.pgt_check
  FROM pgtrickle.pgt_stream_tables s, LATERAL pgt_refresh_report(s.pgt_relid) r
 WHERE s.pgt_name LIKE 'sn\_%' ORDER BY 1;

SELECT count(pgtrickle.drop_stream_table(pgt_name)) AS dropped
  FROM pgtrickle.pgt_stream_tables WHERE pgt_name LIKE 'sn\_%';
DROP VIEW sn_view;
DROP TABLE sn_src;
