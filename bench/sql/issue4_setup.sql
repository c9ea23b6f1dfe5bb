-- bench/sql/issue4_setup.sql: objects of the issue-4 benchmark (scheduler
-- latency and overhead), loaded into database bench by bench/run_issue4.sh.

CREATE TABLE bench4_results (
    id      bigserial PRIMARY KEY,
    section text NOT NULL,       -- latency_single, latency_chain, cpu_idle, cpu_busy, ...
    rep     int,
    ms      float8,              -- a latency, or CPU milliseconds
    value   float8,              -- other figures (passes, seconds, kB)
    info    text
);

CREATE TABLE bench4_params (name text PRIMARY KEY, value text);

-- (a) one '1s' DIFFERENTIAL stream table
CREATE TABLE lat_src (id bigint PRIMARY KEY, payload int);
SELECT pgtrickle.create_stream_table('lat_st', 'SELECT id, payload FROM lat_src',
                                     schedule => '1s', refresh_mode => 'DIFFERENTIAL');

-- (a) a 3-level chain of 'calculated' stream tables: ch_a reads ch_src,
-- ch_b reads ch_a, ch_c reads ch_b; ch_c has no reader, so all three
-- refresh every pg_trickle.default_schedule_seconds (1).  A new row with a
-- new group g shows up in ch_c as a row of that group.
CREATE TABLE ch_src (id bigint PRIMARY KEY, g bigint, v int);
SELECT pgtrickle.create_stream_table('ch_a', 'SELECT id, g, v FROM ch_src WHERE v >= 0',
                                     schedule => 'calculated', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('ch_b', 'SELECT g, count(*) AS n, sum(v) AS s FROM ch_a GROUP BY g',
                                     schedule => 'calculated', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('ch_c', 'SELECT g, n, s FROM ch_b WHERE n > 0',
                                     schedule => 'calculated', refresh_mode => 'DIFFERENTIAL');

-- bench_latency(kind, n, gap): n samples (plus one warm-up, rep 0).  Each
-- sample sleeps gap seconds, inserts one row, COMMITs, then polls every
-- millisecond until the row is visible in the stream table (or in the end
-- of the chain), each check a new statement and so a new snapshot.  The
-- latency is from the return of COMMIT to the first check that sees the
-- row.  info records how old last_refresh_at of the stream table was when
-- the row was inserted.
CREATE PROCEDURE bench_latency(kind text, n int, gap float8)
LANGUAGE plpgsql AS $$
DECLARE
    k bigint;
    t0 timestamptz;
    age_s float8;
    seen bool;
BEGIN
    FOR rep IN 0 .. n LOOP
        PERFORM pg_catalog.pg_sleep(gap);
        IF kind = 'single' THEN
            k := (SELECT coalesce(max(id), 0) + 1 FROM lat_src);
            age_s := (SELECT extract(epoch FROM clock_timestamp() - last_refresh_at)
                      FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'lat_st');
            INSERT INTO lat_src VALUES (k, rep);
        ELSE
            k := (SELECT coalesce(max(id), 0) + 1 FROM ch_src);
            age_s := (SELECT extract(epoch FROM clock_timestamp() - last_refresh_at)
                      FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'ch_c');
            INSERT INTO ch_src VALUES (k, k, 1);
        END IF;
        COMMIT;
        t0 := clock_timestamp();
        LOOP
            IF kind = 'single' THEN
                seen := EXISTS (SELECT 1 FROM lat_st WHERE id = k);
            ELSE
                seen := EXISTS (SELECT 1 FROM ch_c WHERE g = k);
            END IF;
            EXIT WHEN seen OR clock_timestamp() - t0 > interval '10 s';
            PERFORM pg_catalog.pg_sleep(0.001);
        END LOOP;
        INSERT INTO bench4_results (section, rep, ms, value, info)
        VALUES ('latency_' || kind, rep,
                CASE WHEN seen THEN extract(epoch FROM clock_timestamp() - t0) * 1000 END,
                age_s, CASE WHEN seen THEN NULL ELSE 'not visible after 10 s' END);
        COMMIT;
    END LOOP;
END $$;

-- bench_idle_tables(n): n sources of one row each, and a '1s' DIFFERENTIAL
-- stream table on each.
CREATE PROCEDURE bench_idle_tables(n int)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. n LOOP
        EXECUTE format('CREATE TABLE idle_src_%s (id int PRIMARY KEY, v int)', i);
        EXECUTE format('INSERT INTO idle_src_%s VALUES (1, %s)', i, i);
        PERFORM pgtrickle.create_stream_table(format('idle_st_%s', i),
                    format('SELECT id, v FROM idle_src_%s', i),
                    schedule => '1s', refresh_mode => 'DIFFERENTIAL');
        COMMIT;
    END LOOP;
END $$;

-- bench_busy(seconds, period): one UPDATE of idle_src_1 every period
-- seconds, each committed, for the given time.
CREATE PROCEDURE bench_busy(seconds float8, period float8)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    WHILE clock_timestamp() - t0 < make_interval(secs => seconds) LOOP
        UPDATE idle_src_1 SET v = v + 1;
        COMMIT;
        PERFORM pg_catalog.pg_sleep(period);
    END LOOP;
END $$;
