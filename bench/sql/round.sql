-- bench/sql/round.sql: one repetition of one batch size.
-- psql variables: batch ('0.01%' ...), rep (1..R).
-- Every statement runs in its own transaction (psql autocommit).

-- same starting state for every round: no dead rows, fresh statistics,
-- nothing left for the checkpointer
VACUUM ANALYZE;
CHECKPOINT;

SELECT bench_apply_batch(:'batch', :rep);

-- one refresh of every stream table and materialized view, each timed
SELECT cmd FROM bench_round_cmds(:'batch', :rep) AS cmd \gexec
