-- bench/sql/issue4_sampler.sql: counts the passes of a scheduler, loaded
-- into database postgres (which has no pg_trickle, so sampling there wakes
-- no scheduler and is no work for the one measured).
--
-- A scheduler reports 'active' during a pass and 'idle' after it; every
-- pass therefore leaves a new state_change while idle.  Sampling every
-- ~2 ms catches each pass unless two passes end within one sample: the
-- count is a lower bound.  The samples are kept in memory and written once
-- at the end, so that the sampler takes no transaction id during the
-- window (bench/run_issue4.sh counts the transaction ids the scheduler
-- takes).

CREATE TABLE IF NOT EXISTS bench4_passes (run text, state_change timestamptz);

CREATE OR REPLACE PROCEDURE bench_count_passes(run text, scheduler_pid int, seconds float8)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    seen timestamptz[] := '{}';
    last timestamptz;
    sc timestamptz;
BEGIN
    WHILE clock_timestamp() - t0 < make_interval(secs => seconds) LOOP
        -- pg_stat_activity is read once per transaction: commit every sample
        sc := (SELECT a.state_change FROM pg_catalog.pg_stat_activity a
                WHERE a.pid = scheduler_pid AND a.state = 'idle');
        IF sc IS NOT NULL AND sc > t0 AND sc IS DISTINCT FROM last THEN
            seen := seen || sc;
            last := sc;
        END IF;
        COMMIT;
        PERFORM pg_catalog.pg_sleep(0.002);
    END LOOP;
    DELETE FROM bench4_passes p WHERE p.run = bench_count_passes.run;
    INSERT INTO bench4_passes SELECT run, x FROM unnest(seen) x;
END $$;
