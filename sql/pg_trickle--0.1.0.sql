/* pg_trickle--0.1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_trickle" to load this file. \quit

/*
 * Catalog.  C code reads these tables by column name through SPI (cold
 * paths) and never maps rows onto structs, so later versions may add
 * columns with ALTER TABLE ... ADD COLUMN.
 *
 * Dump and restore: the catalog is not dumped and stream tables are not
 * extension members, so pg_dump dumps their storage as plain tables.  To
 * move stream tables, run pgtrickle.export_definition() for each and replay
 * the calls on the target (see docs/SQL_REFERENCE.md).
 */

GRANT USAGE ON SCHEMA pgtrickle TO PUBLIC;

CREATE SCHEMA pgtrickle_changes;
REVOKE ALL ON SCHEMA pgtrickle_changes FROM PUBLIC;
-- buffers are read only through pgtrickle._changes(), which checks source privileges
COMMENT ON SCHEMA pgtrickle_changes IS 'pg_trickle change buffers (internal)';

CREATE TABLE pgtrickle.pgt_stream_tables (
    pgt_id                    bigserial PRIMARY KEY,
    pgt_relid                 oid NOT NULL UNIQUE,
    pgt_name                  name NOT NULL,
    pgt_schema                name NOT NULL,
    defining_query            text NOT NULL,
    original_query            text NOT NULL,
    schedule                  text,
    refresh_mode              text NOT NULL DEFAULT 'AUTO'
        CHECK (refresh_mode IN ('AUTO', 'FULL', 'DIFFERENTIAL', 'IMMEDIATE')),
    effective_refresh_mode    text NOT NULL DEFAULT 'FULL'
        CHECK (effective_refresh_mode IN ('FULL', 'DIFFERENTIAL', 'IMMEDIATE')),
    refresh_mode_reason       text,
    status                    text NOT NULL DEFAULT 'INITIALIZING'
        CHECK (status IN ('INITIALIZING', 'ACTIVE', 'SUSPENDED', 'ERROR')),
    is_populated              boolean NOT NULL DEFAULT false,
    data_timestamp            timestamptz,
    frontier                  pg_snapshot,
    last_refresh_at           timestamptz,
    consecutive_errors        integer NOT NULL DEFAULT 0,
    needs_reinit              boolean NOT NULL DEFAULT false,
    last_error_message        text,
    diamond_consistency       text NOT NULL DEFAULT 'atomic'
        CHECK (diamond_consistency IN ('atomic', 'none')),
    diamond_schedule_policy   text NOT NULL DEFAULT 'fastest'
        CHECK (diamond_schedule_policy IN ('fastest', 'slowest')),
    cdc_mode                  text
        CHECK (cdc_mode IN ('auto', 'trigger', 'wal')),
    append_only               boolean NOT NULL DEFAULT false,
    pooler_compatibility_mode boolean NOT NULL DEFAULT false,
    partition_by              text,
    max_differential_joins    integer,
    max_delta_fraction        float8,
    row_identity              text NOT NULL DEFAULT 'ALL_COLUMNS'
        CHECK (row_identity IN ('ALL_COLUMNS', 'GROUP_KEY', 'SINGLETON')),
    identity_columns          name[] NOT NULL DEFAULT '{}',
    created_at                timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at                timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE pgtrickle.pgt_stream_tables IS 'one row per stream table';

CREATE TABLE pgtrickle.pgt_dependencies (
    pgt_id        bigint NOT NULL
        REFERENCES pgtrickle.pgt_stream_tables (pgt_id) ON DELETE CASCADE,
    source_relid  oid NOT NULL,
    source_type   text NOT NULL
        CHECK (source_type IN ('TABLE', 'STREAM_TABLE', 'VIEW', 'MATVIEW', 'FOREIGN_TABLE')),
    columns_used  name[],
    cdc_mode      text NOT NULL DEFAULT 'TRIGGER'
        CHECK (cdc_mode IN ('TRIGGER', 'WAL', 'NONE')),
    PRIMARY KEY (pgt_id, source_relid)
);
CREATE INDEX ON pgtrickle.pgt_dependencies (source_relid);
COMMENT ON TABLE pgtrickle.pgt_dependencies IS 'sources read by each stream table (views resolved to their base tables)';

CREATE TABLE pgtrickle.pgt_refresh_history (
    refresh_id         bigserial PRIMARY KEY,
    pgt_id             bigint NOT NULL
        REFERENCES pgtrickle.pgt_stream_tables (pgt_id) ON DELETE CASCADE,
    data_timestamp     timestamptz,
    start_time         timestamptz NOT NULL,
    end_time           timestamptz,
    action             text NOT NULL
        CHECK (action IN ('NO_DATA', 'FULL', 'DIFFERENTIAL', 'REINITIALIZE', 'SKIP')),
    rows_inserted      bigint NOT NULL DEFAULT 0,
    rows_deleted       bigint NOT NULL DEFAULT 0,
    delta_row_count    bigint NOT NULL DEFAULT 0,
    was_full_fallback  boolean NOT NULL DEFAULT false,
    fallback_reason    text,
    error_message      text,
    status             text NOT NULL
        CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED', 'SKIPPED')),
    initiated_by       text NOT NULL
        CHECK (initiated_by IN ('SCHEDULER', 'MANUAL', 'INITIAL'))
);
CREATE INDEX ON pgtrickle.pgt_refresh_history (pgt_id, start_time);
COMMENT ON TABLE pgtrickle.pgt_refresh_history IS 'one row per refresh attempt';

/* Catalog rows are written only by pg_trickle's C code, as the extension owner. */
REVOKE ALL ON pgtrickle.pgt_stream_tables, pgtrickle.pgt_dependencies,
    pgtrickle.pgt_refresh_history FROM PUBLIC;
GRANT SELECT ON pgtrickle.pgt_stream_tables, pgtrickle.pgt_dependencies,
    pgtrickle.pgt_refresh_history TO PUBLIC;

/* ---------------------------------------------------------------- lifecycle */

CREATE FUNCTION pgtrickle.create_stream_table(
    name text,
    query text,
    schedule text DEFAULT 'calculated',
    refresh_mode text DEFAULT 'AUTO',
    initialize boolean DEFAULT true,
    diamond_consistency text DEFAULT NULL,
    diamond_schedule_policy text DEFAULT NULL,
    cdc_mode text DEFAULT NULL,
    append_only boolean DEFAULT false,
    pooler_compatibility_mode boolean DEFAULT false,
    partition_by text DEFAULT NULL,
    max_differential_joins integer DEFAULT NULL,
    max_delta_fraction float8 DEFAULT NULL)
RETURNS void LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pgt_create_stream_table';
COMMENT ON FUNCTION pgtrickle.create_stream_table(text, text, text, text, boolean, text, text, text, boolean, boolean, text, integer, float8)
    IS 'create a stream table holding the result of query, kept fresh by pg_trickle';

CREATE FUNCTION pgtrickle.create_stream_table_if_not_exists(
    name text,
    query text,
    schedule text DEFAULT 'calculated',
    refresh_mode text DEFAULT 'AUTO',
    initialize boolean DEFAULT true,
    diamond_consistency text DEFAULT NULL,
    diamond_schedule_policy text DEFAULT NULL,
    cdc_mode text DEFAULT NULL,
    append_only boolean DEFAULT false,
    pooler_compatibility_mode boolean DEFAULT false,
    partition_by text DEFAULT NULL,
    max_differential_joins integer DEFAULT NULL,
    max_delta_fraction float8 DEFAULT NULL)
RETURNS void LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pgt_create_stream_table_if_not_exists';
COMMENT ON FUNCTION pgtrickle.create_stream_table_if_not_exists(text, text, text, text, boolean, text, text, text, boolean, boolean, text, integer, float8)
    IS 'create a stream table unless one of that name exists';

CREATE FUNCTION pgtrickle.create_or_replace_stream_table(
    name text,
    query text,
    schedule text DEFAULT 'calculated',
    refresh_mode text DEFAULT 'AUTO',
    initialize boolean DEFAULT true,
    diamond_consistency text DEFAULT NULL,
    diamond_schedule_policy text DEFAULT NULL,
    cdc_mode text DEFAULT NULL,
    append_only boolean DEFAULT false,
    pooler_compatibility_mode boolean DEFAULT false,
    partition_by text DEFAULT NULL,
    max_differential_joins integer DEFAULT NULL,
    max_delta_fraction float8 DEFAULT NULL)
RETURNS void LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pgt_create_or_replace_stream_table';
COMMENT ON FUNCTION pgtrickle.create_or_replace_stream_table(text, text, text, text, boolean, text, text, text, boolean, boolean, text, integer, float8)
    IS 'create a stream table, or bring an existing one to this definition';

CREATE FUNCTION pgtrickle.alter_stream_table(
    name text,
    query text DEFAULT NULL,
    schedule text DEFAULT NULL,
    refresh_mode text DEFAULT NULL,
    status text DEFAULT NULL,
    diamond_consistency text DEFAULT NULL,
    diamond_schedule_policy text DEFAULT NULL,
    cdc_mode text DEFAULT NULL,
    append_only boolean DEFAULT NULL,
    pooler_compatibility_mode boolean DEFAULT NULL,
    tier text DEFAULT NULL,
    fuse text DEFAULT NULL,
    fuse_ceiling bigint DEFAULT NULL,
    fuse_sensitivity integer DEFAULT NULL,
    partition_by text DEFAULT NULL,
    max_differential_joins integer DEFAULT NULL,
    max_delta_fraction float8 DEFAULT NULL)
RETURNS void LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pgt_alter_stream_table';
COMMENT ON FUNCTION pgtrickle.alter_stream_table(text, text, text, text, text, text, text, text, boolean, boolean, text, text, bigint, integer, text, integer, float8)
    IS 'change the query or settings of a stream table; NULL leaves a setting unchanged';

CREATE FUNCTION pgtrickle.drop_stream_table(name text, cascade boolean DEFAULT false)
RETURNS void LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pgt_drop_stream_table';
COMMENT ON FUNCTION pgtrickle.drop_stream_table(text, boolean)
    IS 'drop a stream table (and, with cascade, the stream tables that read it)';

CREATE FUNCTION pgtrickle.refresh_stream_table(name text)
RETURNS void LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pgt_refresh_stream_table';
COMMENT ON FUNCTION pgtrickle.refresh_stream_table(text) IS 'refresh one stream table now';

CREATE FUNCTION pgtrickle.resume_stream_table(name text)
RETURNS void LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pgt_resume_stream_table';
COMMENT ON FUNCTION pgtrickle.resume_stream_table(text)
    IS 'set a SUSPENDED or ERROR stream table back to ACTIVE and clear its error count';

CREATE FUNCTION pgtrickle.repair_stream_table(name text)
RETURNS text LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pgt_repair_stream_table';
COMMENT ON FUNCTION pgtrickle.repair_stream_table(text)
    IS 'reinstall change capture and dependencies of a stream table; its next refresh is FULL';

CREATE FUNCTION pgtrickle.export_definition(name text)
RETURNS text LANGUAGE C STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pgt_export_definition';
COMMENT ON FUNCTION pgtrickle.export_definition(text)
    IS 'a create_stream_table() call that recreates this stream table';

/* ---------------------------------------------------------------- information */

CREATE FUNCTION pgtrickle.version()
RETURNS text LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pgt_version';
COMMENT ON FUNCTION pgtrickle.version() IS 'version of the loaded pg_trickle library';

CREATE FUNCTION pgtrickle.parse_schedule(schedule text,
    OUT kind text, OUT interval_seconds bigint, OUT cron text)
RETURNS record LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pgt_parse_schedule';
COMMENT ON FUNCTION pgtrickle.parse_schedule(text)
    IS 'how pg_trickle reads a schedule string (duration, cron or calculated)';

CREATE FUNCTION pgtrickle.explain_refresh_mode(name text,
    OUT configured text, OUT effective text, OUT reason text)
RETURNS record LANGUAGE C STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pgt_explain_refresh_mode';
COMMENT ON FUNCTION pgtrickle.explain_refresh_mode(text)
    IS 'configured and effective refresh mode of a stream table, and why they differ';

CREATE FUNCTION pgtrickle.explain_st(name text, with_analyze boolean DEFAULT false,
    OUT property text, OUT value text)
RETURNS SETOF record LANGUAGE C STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pgt_explain_st';
COMMENT ON FUNCTION pgtrickle.explain_st(text, boolean)
    IS 'how a stream table is maintained, including its delta SQL';

CREATE FUNCTION pgtrickle._resolve(name text)
RETURNS oid LANGUAGE C STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pgt_resolve';
COMMENT ON FUNCTION pgtrickle._resolve(text) IS 'internal: OID of the stream table called name';

CREATE FUNCTION pgtrickle.get_refresh_history(name text, max_rows integer DEFAULT 20)
RETURNS SETOF pgtrickle.pgt_refresh_history
LANGUAGE sql STABLE STRICT
-- no SET search_path: name must resolve on the caller's search_path;
-- every object below is schema-qualified
AS $$
    SELECT h.*
      FROM pgtrickle.pgt_refresh_history h
     WHERE h.pgt_id = (SELECT st.pgt_id FROM pgtrickle.pgt_stream_tables st
                        WHERE st.pgt_relid = pgtrickle._resolve(name))
     ORDER BY h.refresh_id DESC
     LIMIT max_rows
$$;

COMMENT ON FUNCTION pgtrickle.get_refresh_history(text, integer)
    IS 'the latest refresh attempts of a stream table, newest first';

/* ---------------------------------------------------------------- internals */

CREATE FUNCTION pgtrickle._st_guard()
RETURNS trigger LANGUAGE C
AS 'MODULE_PATHNAME', 'pgt_st_guard';
COMMENT ON FUNCTION pgtrickle._st_guard() IS 'internal: refuses direct changes to a stream table';

CREATE FUNCTION pgtrickle._cdc_capture()
RETURNS trigger LANGUAGE C SECURITY DEFINER
AS 'MODULE_PATHNAME', 'pgt_cdc_capture';
COMMENT ON FUNCTION pgtrickle._cdc_capture()
    IS 'internal: appends a statement''s changed rows to the source''s change buffer';
-- only pg_trickle creates capture triggers (as the extension owner)
REVOKE EXECUTE ON FUNCTION pgtrickle._cdc_capture() FROM PUBLIC;

CREATE FUNCTION pgtrickle._ivm_maintain()
RETURNS trigger LANGUAGE C
AS 'MODULE_PATHNAME', 'pgt_ivm_maintain';
COMMENT ON FUNCTION pgtrickle._ivm_maintain()
    IS 'internal: applies a statement''s change to the IMMEDIATE stream tables reading the table';
-- only pg_trickle creates IMMEDIATE triggers (as the extension owner)
REVOKE EXECUTE ON FUNCTION pgtrickle._ivm_maintain() FROM PUBLIC;

-- IMMEDIATE maintenance updates its stream table's row here before it
-- reads anything: the row lock orders maintainers, and in REPEATABLE READ
-- an update of a row a concurrent transaction changed fails to serialize.
CREATE TABLE pgtrickle.pgt_ivm_locks (
    pgt_relid  oid PRIMARY KEY,
    n          bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 10);
COMMENT ON TABLE pgtrickle.pgt_ivm_locks IS 'internal: one maintenance lock row per IMMEDIATE stream table';

-- true, with a planner estimate of few rows: generated recursive deltas use
-- it so that the planner does not size hash tables for millions of rows
CREATE FUNCTION pgtrickle._estimate_few_support(internal) RETURNS internal
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'pgt_estimate_few_support';
CREATE FUNCTION pgtrickle._estimate_few(anyelement) RETURNS boolean
    LANGUAGE c IMMUTABLE PARALLEL SAFE SUPPORT pgtrickle._estimate_few_support
    AS 'MODULE_PATHNAME', 'pgt_estimate_few';
REVOKE ALL ON FUNCTION pgtrickle._estimate_few_support(internal) FROM PUBLIC;

CREATE FUNCTION pgtrickle._changes(source oid, frontier pg_snapshot)
RETURNS SETOF record LANGUAGE C STABLE STRICT PARALLEL UNSAFE ROWS 100
AS 'MODULE_PATHNAME', 'pgt_changes';
COMMENT ON FUNCTION pgtrickle._changes(oid, pg_snapshot)
    IS 'internal: captured changes of a source after a frontier, for readers allowed to select those columns';

CREATE FUNCTION pgtrickle._on_sql_drop()
RETURNS event_trigger LANGUAGE C
AS 'MODULE_PATHNAME', 'pgt_on_sql_drop';
COMMENT ON FUNCTION pgtrickle._on_sql_drop() IS 'internal: forgets stream tables whose storage was dropped';

CREATE EVENT TRIGGER pgtrickle_sql_drop ON sql_drop
    EXECUTE FUNCTION pgtrickle._on_sql_drop();

CREATE FUNCTION pgtrickle._on_ddl_start()
RETURNS event_trigger LANGUAGE C
AS 'MODULE_PATHNAME', 'pgt_on_ddl_start';
COMMENT ON FUNCTION pgtrickle._on_ddl_start()
    IS 'internal: refuses ALTER TABLE and CREATE OR REPLACE VIEW that would break stream tables';

CREATE EVENT TRIGGER pgtrickle_ddl_start ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'CREATE VIEW')
    EXECUTE FUNCTION pgtrickle._on_ddl_start();

CREATE FUNCTION pgtrickle._on_ddl_end()
RETURNS event_trigger LANGUAGE C
AS 'MODULE_PATHNAME', 'pgt_on_ddl_end';
COMMENT ON FUNCTION pgtrickle._on_ddl_end()
    IS 'internal: captures partitions and children added to a source later';

CREATE EVENT TRIGGER pgtrickle_ddl_end ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION pgtrickle._on_ddl_end();

/* ---------------------------------------------------------------- scheduler */

CREATE FUNCTION pgtrickle._scheduler_running()
RETURNS boolean LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pgt_scheduler_is_running';
COMMENT ON FUNCTION pgtrickle._scheduler_running()
    IS 'internal: does this database have a running pg_trickle scheduler';

CREATE FUNCTION pgtrickle._wake_launcher()
RETURNS void LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pgt_wake_launcher';
COMMENT ON FUNCTION pgtrickle._wake_launcher()
    IS 'internal: start schedulers when the current transaction commits';

/* ---------------------------------------------------------------- monitoring */

CREATE VIEW pgtrickle.stream_tables_info AS
SELECT st.*,
       pg_catalog.now() - st.data_timestamp AS staleness,
       CASE WHEN st.schedule IS NULL OR st.data_timestamp IS NULL THEN NULL
            WHEN (pgtrickle.parse_schedule(st.schedule)).kind <> 'interval' THEN NULL
            ELSE pg_catalog.now() - st.data_timestamp >
                 pg_catalog.make_interval(secs => 2 * (pgtrickle.parse_schedule(st.schedule)).interval_seconds)
       END AS stale
  FROM pgtrickle.pgt_stream_tables st;
COMMENT ON VIEW pgtrickle.stream_tables_info
    IS 'catalog rows of the stream tables with their staleness';

CREATE VIEW pgtrickle.pg_stat_stream_tables AS
SELECT i.pgt_id, i.pgt_schema, i.pgt_name, i.status, i.refresh_mode,
       i.effective_refresh_mode, i.is_populated, i.data_timestamp, i.schedule,
       i.staleness, i.stale, i.consecutive_errors, i.last_error_message,
       h.total_refreshes, h.successful_refreshes, h.failed_refreshes,
       h.total_rows_inserted, h.total_rows_deleted, h.avg_duration_ms,
       l.action AS last_action, l.status AS last_status,
       (SELECT pg_catalog.array_agg(DISTINCT d.cdc_mode)
          FROM pgtrickle.pgt_dependencies d WHERE d.pgt_id = i.pgt_id) AS cdc_modes
  FROM pgtrickle.stream_tables_info i
  LEFT JOIN LATERAL (
        SELECT pg_catalog.count(*) AS total_refreshes,
               pg_catalog.count(*) FILTER (WHERE r.status = 'COMPLETED') AS successful_refreshes,
               pg_catalog.count(*) FILTER (WHERE r.status = 'FAILED') AS failed_refreshes,
               COALESCE(pg_catalog.sum(r.rows_inserted), 0) AS total_rows_inserted,
               COALESCE(pg_catalog.sum(r.rows_deleted), 0) AS total_rows_deleted,
               pg_catalog.avg(pg_catalog.date_part('epoch', r.end_time - r.start_time) * 1000)
                   FILTER (WHERE r.status = 'COMPLETED') AS avg_duration_ms
          FROM pgtrickle.pgt_refresh_history r WHERE r.pgt_id = i.pgt_id) h ON true
  LEFT JOIN LATERAL (
        SELECT r.action, r.status FROM pgtrickle.pgt_refresh_history r
         WHERE r.pgt_id = i.pgt_id ORDER BY r.refresh_id DESC LIMIT 1) l ON true;
COMMENT ON VIEW pgtrickle.pg_stat_stream_tables
    IS 'one row per stream table: state, staleness and refresh totals';

CREATE VIEW pgtrickle.quick_health AS
SELECT pg_catalog.count(*) AS total_stream_tables,
       pg_catalog.count(*) FILTER (WHERE i.status = 'ERROR') AS error_tables,
       pg_catalog.count(*) FILTER (WHERE i.stale) AS stale_tables,
       pgtrickle._scheduler_running() AS scheduler_running,
       CASE WHEN pg_catalog.count(*) = 0 THEN 'EMPTY'
            WHEN pg_catalog.count(*) FILTER (WHERE i.status = 'ERROR') > 0 THEN 'CRITICAL'
            WHEN pg_catalog.count(*) FILTER (WHERE i.stale) > 0
                 OR NOT pgtrickle._scheduler_running() THEN 'WARNING'
            ELSE 'OK' END AS status
  FROM pgtrickle.stream_tables_info i;
COMMENT ON VIEW pgtrickle.quick_health IS 'one-row summary of the health of all stream tables';

CREATE FUNCTION pgtrickle.get_staleness(name text)
RETURNS float8 LANGUAGE sql STABLE STRICT
AS $$
    SELECT pg_catalog.date_part('epoch', pg_catalog.now() - st.data_timestamp)
      FROM pgtrickle.pgt_stream_tables st
     WHERE st.pgt_relid = pgtrickle._resolve(name)
$$;
COMMENT ON FUNCTION pgtrickle.get_staleness(text)
    IS 'seconds since the moment the stream table''s data is current as of (NULL if never populated)';

CREATE FUNCTION pgtrickle.pgt_status()
RETURNS TABLE (name text, status text, refresh_mode text, is_populated boolean,
               consecutive_errors integer, schedule text, data_timestamp timestamptz,
               staleness interval)
LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.quote_ident(i.pgt_schema) || '.' || pg_catalog.quote_ident(i.pgt_name),
           i.status, i.effective_refresh_mode, i.is_populated, i.consecutive_errors,
           COALESCE(i.schedule, 'calculated'), i.data_timestamp, i.staleness
      FROM pgtrickle.stream_tables_info i ORDER BY i.pgt_id
$$;
COMMENT ON FUNCTION pgtrickle.pgt_status() IS 'state of every stream table';

CREATE FUNCTION pgtrickle.change_buffer_sizes()
RETURNS TABLE (source_table regclass, buffered_rows bigint, buffer_bytes bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b record;
BEGIN
    FOR b IN SELECT c.oid, c.relname FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'pgtrickle_changes' AND c.relkind = 'r'
              ORDER BY c.relname
    LOOP
        source_table := substr(b.relname, 9)::oid::regclass;
        EXECUTE format('SELECT count(*) FROM pgtrickle_changes.%I', b.relname) INTO buffered_rows;
        buffer_bytes := pg_catalog.pg_total_relation_size(b.oid);
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION pgtrickle.change_buffer_sizes()
    IS 'change buffers: source, rows not yet trimmed (consumed by some reader or pending) and size';

CREATE FUNCTION pgtrickle.diamond_groups()
RETURNS TABLE (group_id integer, member regclass, is_convergence boolean,
               schedule_policy text)
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'pgt_diamond_groups';
COMMENT ON FUNCTION pgtrickle.diamond_groups()
    IS 'stream tables the scheduler refreshes together, in one transaction, because diamond_consistency = ''atomic'' (upstream first)';

CREATE FUNCTION pgtrickle.worker_pool_status(
    OUT active_workers integer, OUT database_workers integer,
    OUT max_workers integer, OUT per_db_cap integer, OUT parallel_mode text)
RETURNS record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'pgt_worker_pool_status';
COMMENT ON FUNCTION pgtrickle.worker_pool_status()
    IS 'dynamic refresh workers running (all databases, this one) and their limits';

CREATE FUNCTION pgtrickle.dependency_tree()
RETURNS TABLE (stream_table regclass, source regclass, source_type text, depth integer)
LANGUAGE sql STABLE
AS $$
    WITH RECURSIVE t(root, source_relid, source_type, depth) AS (
        SELECT s.pgt_relid, d.source_relid, d.source_type, 1
          FROM pgtrickle.pgt_stream_tables s
          JOIN pgtrickle.pgt_dependencies d USING (pgt_id)
        UNION ALL
        SELECT t.root, d.source_relid, d.source_type, t.depth + 1
          FROM t
          JOIN pgtrickle.pgt_stream_tables s ON s.pgt_relid = t.source_relid
          JOIN pgtrickle.pgt_dependencies d ON d.pgt_id = s.pgt_id
         WHERE t.depth < 100
    )
    SELECT t.root::regclass, t.source_relid::regclass, t.source_type, t.depth
      FROM t ORDER BY 1, 4, 2
$$;
COMMENT ON FUNCTION pgtrickle.dependency_tree()
    IS 'the sources of every stream table, through the stream tables it reads (depth 1 = direct)';

SELECT pgtrickle._wake_launcher();

/* ---------------------------------------------------------------- diagnostics */

CREATE FUNCTION pgtrickle.validate_query(query text,
    OUT valid boolean, OUT differential boolean, OUT reason text)
RETURNS record LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pgt_validate_query';
COMMENT ON FUNCTION pgtrickle.validate_query(text)
    IS 'could query define a stream table, could it be maintained differentially, and why not';

CREATE FUNCTION pgtrickle.list_auxiliary_columns(name text)
RETURNS TABLE (column_name name, data_type text, purpose text)
LANGUAGE sql STABLE STRICT
AS $$
    SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
           CASE WHEN a.attname = '__pgt_row_id' THEN 'row identity hash (indexed)'
                WHEN a.attname = '__pgt_count' THEN 'rows in the group'
                WHEN a.attname LIKE '\_\_pgt\_nn\_%' THEN 'non-null inputs of the sum/avg in column ' || substr(a.attname, 10)
                WHEN a.attname LIKE '\_\_pgt\_sum\_%' THEN 'exact sum behind the avg in column ' || substr(a.attname, 11)
                ELSE 'internal' END
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = pgtrickle._resolve(name) AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname LIKE '\_\_pgt\_%'
     ORDER BY a.attnum
$$;
COMMENT ON FUNCTION pgtrickle.list_auxiliary_columns(text)
    IS 'the hidden __pgt_* columns of a stream table and what they hold';

CREATE FUNCTION pgtrickle.st_refresh_stats()
RETURNS TABLE (pgt_name name, pgt_schema name, status text, refresh_mode text,
               is_populated boolean, total_refreshes bigint, successful_refreshes bigint,
               failed_refreshes bigint, total_rows_inserted numeric, total_rows_deleted numeric,
               avg_duration_ms float8, last_refresh_action text, last_refresh_status text,
               last_refresh_at timestamptz, staleness_secs float8, stale boolean,
               consecutive_errors integer, schedule text, last_error_message text)
LANGUAGE sql STABLE
AS $$
    SELECT s.pgt_name, s.pgt_schema, s.status, s.effective_refresh_mode, s.is_populated,
           s.total_refreshes, s.successful_refreshes, s.failed_refreshes,
           s.total_rows_inserted, s.total_rows_deleted, s.avg_duration_ms,
           s.last_action, s.last_status, i.last_refresh_at,
           pg_catalog.date_part('epoch', s.staleness), s.stale, s.consecutive_errors,
           COALESCE(s.schedule, 'calculated'), s.last_error_message
      FROM pgtrickle.pg_stat_stream_tables s
      JOIN pgtrickle.pgt_stream_tables i USING (pgt_id)
     ORDER BY s.pgt_id
$$;
COMMENT ON FUNCTION pgtrickle.st_refresh_stats() IS 'refresh statistics per stream table';

CREATE FUNCTION pgtrickle.health_check()
RETURNS TABLE (check_name text, severity text, detail text)
LANGUAGE sql STABLE
AS $$
    SELECT 'scheduler',
           CASE WHEN pgtrickle._scheduler_running() THEN 'OK' ELSE 'WARN' END,
           CASE WHEN pgtrickle._scheduler_running() THEN 'a scheduler is running in this database'
                ELSE 'no scheduler: add pg_trickle to shared_preload_libraries, or refresh manually' END
    UNION ALL
    SELECT 'error_tables',
           CASE WHEN pg_catalog.count(*) = 0 THEN 'OK' ELSE 'ERROR' END,
           COALESCE(pg_catalog.string_agg(pgt_schema || '.' || pgt_name, ', '), 'none')
      FROM pgtrickle.pgt_stream_tables WHERE status = 'ERROR'
    UNION ALL
    SELECT 'stale_tables',
           CASE WHEN pg_catalog.count(*) = 0 THEN 'OK' ELSE 'WARN' END,
           COALESCE(pg_catalog.string_agg(pgt_schema || '.' || pgt_name, ', '), 'none')
      FROM pgtrickle.stream_tables_info WHERE stale
    UNION ALL
    SELECT 'capture_triggers',
           CASE WHEN pg_catalog.count(*) = 0 THEN 'OK' ELSE 'ERROR' END,
           COALESCE('missing on: ' || pg_catalog.string_agg(DISTINCT d.source_relid::regclass::text, ', '), 'all present')
      FROM pgtrickle.pgt_dependencies d
     WHERE d.cdc_mode = 'TRIGGER' AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_trigger t
            WHERE t.tgrelid = d.source_relid AND t.tgname = '__pgt_cdc_ins')
$$;
COMMENT ON FUNCTION pgtrickle.health_check() IS 'health checks with severity OK, WARN or ERROR';
