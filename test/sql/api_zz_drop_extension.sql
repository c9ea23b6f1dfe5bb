--
-- api_zz_drop_extension (the last api_ test): DROP EXTENSION refuses while
-- stream tables exist and changes nothing; DROP EXTENSION ... CASCADE removes
-- every stream table, buffer and trigger and leaves their sources alone; the
-- extension can then be created again and used.  The extension stays
-- installed at the end.
--
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TEMP TABLE before AS
SELECT pgt_relid AS relid, format('%I.%I', pgt_schema, pgt_name) AS st, pgt_id
  FROM pgtrickle.pgt_stream_tables;
SELECT st FROM before ORDER BY pgt_id;
CREATE TEMP TABLE sources AS
SELECT DISTINCT d.source_relid AS relid, d.source_relid::regclass::text AS source
  FROM pgtrickle.pgt_dependencies d
 WHERE d.source_type <> 'STREAM_TABLE';
SELECT source FROM sources ORDER BY source;
CREATE TEMP TABLE source_rows AS
SELECT 'customers' AS t, count(*) AS n FROM customers
UNION ALL SELECT 'orders', count(*) FROM orders
UNION ALL SELECT 'events', count(*) FROM events
UNION ALL SELECT 'empty_src', count(*) FROM empty_src;
-- change capture is installed: the AUTO stream tables of api_create are
-- DIFFERENTIAL (on orders); here differential ones on more sources
SELECT pgtrickle.create_stream_table('zz_capture_' || t, format('SELECT * FROM %I', t),
                                     refresh_mode => 'DIFFERENTIAL')
  FROM unnest(ARRAY['customers', 'events', 'empty_src', 'typed']) t;
SELECT tgrelid::regclass AS source, count(*) AS capture_triggers,
       EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = 'pgtrickle_changes'::regnamespace
                                          AND c.relname = 'changes_' || tgrelid::oid) AS buffer
  FROM pg_trigger WHERE tgname LIKE '\_\_pgt\_cdc%' GROUP BY tgrelid ORDER BY tgrelid::regclass::text;
INSERT INTO before
SELECT pgt_relid, format('%I.%I', pgt_schema, pgt_name), pgt_id
  FROM pgtrickle.pgt_stream_tables WHERE pgt_name LIKE 'zz\_capture\_%';

-- a view on the catalog stops DROP EXTENSION, which then changes nothing
-- (terse: the DETAIL would list every dependent object)
CREATE VIEW catalog_view AS SELECT pgt_name FROM pgtrickle.pgt_stream_tables;
\set VERBOSITY terse
DROP EXTENSION pg_trickle;
\set VERBOSITY default
SELECT count(*) AS stream_tables FROM pgtrickle.pgt_stream_tables;
SELECT count(*) AS dependents FROM pg_depend
 WHERE refobjid = 'pgtrickle.pgt_stream_tables'::regclass
   AND objid = (SELECT oid FROM pg_rewrite WHERE ev_class = 'catalog_view'::regclass);
DROP VIEW catalog_view;

-- without CASCADE: refused, because stream tables hold data (pg_ivm refuses
-- too); nothing changes
\set VERBOSITY terse
DROP EXTENSION pg_trickle;
\set VERBOSITY default
SELECT (SELECT count(*) FROM pgtrickle.pgt_stream_tables) = (SELECT count(*) FROM before)
       AS catalog_kept,
       (SELECT count(*) FROM pg_class WHERE oid IN (SELECT relid FROM before))
       = (SELECT count(*) FROM before) AS storage_kept,
       (SELECT count(*) FROM pg_trigger WHERE tgname LIKE '\_\_pgt\_cdc%') AS capture_triggers,
       (SELECT count(*) FROM pg_class WHERE relnamespace = 'pgtrickle_changes'::regnamespace
                                        AND relkind = 'r') AS buffers;
SELECT pgt_check('zz_capture_customers');

\set VERBOSITY terse
DROP EXTENSION pg_trickle CASCADE;
\set VERBOSITY default
-- every storage table is gone, with its triggers and dependencies
SELECT count(*) AS storage_tables_left FROM pg_class WHERE oid IN (SELECT relid FROM before);
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid IN (SELECT relid FROM before);
SELECT count(*) AS depends_left FROM pg_depend
 WHERE objid IN (SELECT relid FROM before) OR refobjid IN (SELECT relid FROM before);
SELECT count(*) AS relations_named_like_stream_tables FROM pg_class
 WHERE relname IN ('c_all_params', 'c_by_region', 'My Table', 'Odd Name', 'c_st_on_st');
-- and every object of the extension
-- (the schema pgtrickle, created by CREATE EXTENSION from the control file,
-- is not a member and stays behind, empty)
SELECT n.nspname, (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid) AS relations,
       (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = n.oid) AS functions
  FROM pg_namespace n WHERE n.nspname IN ('pgtrickle', 'pgtrickle_changes') ORDER BY 1;
SELECT count(*) AS event_triggers FROM pg_event_trigger WHERE evtname LIKE 'pgtrickle%';
SELECT count(*) AS functions FROM pg_proc WHERE proname LIKE 'pgt\_%' AND pronamespace <> 'public'::regnamespace;
-- the sources are intact: same tables, same rows, no triggers
SELECT s.source, c.oid IS NOT NULL AS exists
  FROM sources s LEFT JOIN pg_class c ON c.oid = s.relid ORDER BY s.source;
SELECT t, n, n = (CASE t WHEN 'customers' THEN (SELECT count(*) FROM customers)
                         WHEN 'orders' THEN (SELECT count(*) FROM orders)
                         WHEN 'events' THEN (SELECT count(*) FROM events)
                         WHEN 'empty_src' THEN (SELECT count(*) FROM empty_src) END) AS unchanged
  FROM source_rows ORDER BY t;
SELECT count(*) AS triggers_on_sources FROM pg_trigger
 WHERE tgrelid IN (SELECT relid FROM sources) AND NOT tgisinternal;
SELECT count(*) AS capture_triggers FROM pg_trigger WHERE tgname LIKE '\_\_pgt\_cdc%';
SELECT count(*) AS pgt_triggers FROM pg_trigger WHERE tgname LIKE '\_\_pgt\_%';
SELECT count(*) AS extension_depends FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid NOT IN (SELECT oid FROM pg_extension);

-- a fresh start: the extension again, a stream table of an old name
CREATE EXTENSION pg_trickle;
SELECT count(*) AS stream_tables FROM pgtrickle.pgt_stream_tables;
SELECT pgtrickle.create_stream_table('c_by_region',
    'SELECT region, count(*) AS n FROM customers GROUP BY region', refresh_mode => 'FULL');
SELECT region, n FROM c_by_region ORDER BY region NULLS FIRST;
SELECT pgt_check('c_by_region');
INSERT INTO customers VALUES (7, 'Gus', 'west');
SELECT pgtrickle.refresh_stream_table('c_by_region');
SELECT pgt_check('c_by_region');
SELECT pgt_name, status, is_populated, row_identity FROM pgtrickle.pgt_stream_tables;
