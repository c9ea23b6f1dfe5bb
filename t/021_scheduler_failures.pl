# Copyright (c) pg_trickle contributors
#
# 021_scheduler_failures.pl — the scheduler when refreshes fail and when
# it is killed.
#
#   failures: a refresh that fails (division by zero in the query after an
#     INSERT) writes FAILED history rows initiated_by SCHEDULER and counts
#     consecutive_errors; the failed refresh is retried on its schedule and
#     the stream table goes to status ERROR after
#     pg_trickle.max_consecutive_errors (3) failures; other stream tables
#     keep being refreshed meanwhile; an ERROR stream table is skipped; after
#     the data is fixed, resume_stream_table() makes it ACTIVE and it is
#     refreshed.  The same for a failure whose cause is fixed without any
#     DML (a revoked privilege granted again), for FULL stream tables, and
#     for max_consecutive_errors = 1.
#   kill -9: the scheduler is killed with SIGKILL in the middle of a
#     refresh (held at a test waitpoint) while a client keeps changing the
#     sources; the postmaster restarts everything; the interrupted refresh
#     is recorded as FAILED, and every stream table catches up exactly
#     (EXCEPT ALL both ways empty), with no manual refresh.  Done once at
#     each waitpoint (after the refresh took its snapshot, and after it
#     wrote the stream table but before it recorded the refresh).

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PgtTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

# ------------------------------------------------------------------ helpers

my $node = PgtTest::start_node('schedfail', "log_lock_waits = on\nrestart_after_crash = on\n");

sub sql { return PgtTest::sql($node, @_); }

sub wait_ok
{
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return PgtTest::wait_ok($node, @_);
}

sub diff_sql { return PgtTest::diff_sql(@_); }

sub st_state
{
	my ($db, $st) = @_;
	return sql($db, "SELECT status || ' ' || consecutive_errors FROM pgtrickle.pgt_stream_tables WHERE pgt_name = '$st'");
}

sub hist_q
{
	my ($st, $where) = @_;
	return "SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
	  . "WHERE s.pgt_name = '$st'" . ($where ? " AND $where" : '');
}

sub history
{
	my ($db, $st, $where) = @_;
	return sql($db, hist_q($st, $where));
}

sub set_guc
{
	my ($name, $value) = @_;
	my $off = -s $node->logfile;
	if (defined $value)
	{
		sql('postgres', "ALTER SYSTEM SET $name = '$value'");
	}
	else
	{
		sql('postgres', "ALTER SYSTEM RESET $name");
	}
	sql('postgres', 'SELECT pg_reload_conf()');
	$node->wait_for_log(qr/received SIGHUP, reloading configuration files/, $off);
	# the postmaster signals its children right after logging that
	usleep(200_000);
}

# ------------------------------------------------------------------ failures

sql('postgres', 'CREATE EXTENSION pg_trickle');
wait_ok('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = 'postgres'",
	'1', 30, 'scheduler running');

sql('postgres', q{
CREATE TABLE f_src (id int PRIMARY KEY, x int);
INSERT INTO f_src VALUES (1, 1), (2, 2), (3, 4);
SELECT pgtrickle.create_stream_table('f_st', 'SELECT id, 100 / x AS q FROM f_src', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
CREATE TABLE ok_src (id int PRIMARY KEY);
SELECT pgtrickle.create_stream_table('ok_st', 'SELECT id FROM ok_src', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
});
my $fq = 'SELECT id, 100 / x AS q FROM f_src';

sql('postgres', 'INSERT INTO f_src VALUES (4, 0)');
wait_ok('postgres', 'SELECT (' . hist_q('f_st', "h.status = 'FAILED' AND h.initiated_by = 'SCHEDULER' AND h.error_message LIKE '%division by zero%'") . ') > 0',
	't', 30, 'failing refresh writes a FAILED history row initiated_by SCHEDULER');
like(st_state('postgres', 'f_st'), qr/^ACTIVE [12]$/, 'consecutive_errors counts, still ACTIVE');
like(sql('postgres', "SELECT last_error_message FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'f_st'"),
	qr/division by zero/, 'last_error_message has the error');
is(sql('postgres', "SELECT string_agg(id || ':' || q, ',' ORDER BY id) FROM f_st"), '1:100,2:50,3:25',
	'the failed refresh left the stream table as it was');
is(sql('postgres', "SELECT failed_refreshes > 0 FROM pgtrickle.pg_stat_stream_tables WHERE pgt_name = 'f_st'"), 't',
	'pg_stat_stream_tables counts the failure');

# Nothing else changes now: the failed refresh must be retried on its own
# schedule until it gives up.
wait_ok('postgres', "SELECT status || ' ' || consecutive_errors FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'f_st'",
	'ERROR 3', 15, 'a failed refresh is retried on its schedule: ERROR after 3 failures, with no further DML');

# Other stream tables keep being refreshed.  (Each of these commits also
# wakes the scheduler, so f_st reaches ERROR here even if it is not retried
# on its own.)
for my $i (1 .. 5)
{
	sql('postgres', "INSERT INTO ok_src VALUES ($i)");
	wait_ok('postgres', "SELECT count(*) FROM ok_st WHERE id = $i", '1', 15, "other stream table refreshed meanwhile ($i)");
}
is(st_state('postgres', 'f_st'), 'ERROR 3', 'f_st is ERROR after max_consecutive_errors = 3 failures');
is(history('postgres', 'f_st', "h.status = 'FAILED' AND h.initiated_by = 'SCHEDULER'"), '3', '... with exactly 3 FAILED history rows');
is(sql('postgres', "SELECT error_tables || ' ' || status FROM pgtrickle.quick_health"), '1 CRITICAL', 'quick_health is CRITICAL');
is(sql('postgres', "SELECT status FROM pgtrickle.pgt_status() WHERE name = 'public.f_st'"), 'ERROR', 'pgt_status() shows ERROR');

# ERROR: skipped, even when its sources change
my $nhist = history('postgres', 'f_st');
sql('postgres', 'INSERT INTO f_src VALUES (5, 5)');
sql('postgres', 'INSERT INTO ok_src VALUES (100)');
wait_ok('postgres', 'SELECT count(*) FROM ok_st WHERE id = 100', '1', 15, 'a pass ran after the change');
sql('postgres', 'INSERT INTO ok_src VALUES (101)');
wait_ok('postgres', 'SELECT count(*) FROM ok_st WHERE id = 101', '1', 15, 'and another one');
is(history('postgres', 'f_st'), $nhist, 'an ERROR stream table is not refreshed (no new history rows)');
is(st_state('postgres', 'f_st'), 'ERROR 3', '... and stays ERROR');

# Fix the data, resume.  The source no longer holds x = 0, so the defining
# query runs fine, and so must the refresh: the version (4, 0) that was
# inserted and then updated away is not part of the result.
sql('postgres', 'UPDATE f_src SET x = 5 WHERE id = 4');
sql('postgres', "SELECT pgtrickle.resume_stream_table('f_st')");
is(st_state('postgres', 'f_st'), 'ACTIVE 0', 'resume_stream_table: ACTIVE, errors cleared');
wait_ok('postgres', diff_sql('f_st', 'id, q', $fq), '0 0', 15, 'after resume the scheduler refreshes it: equals its query');
is(sql('postgres', "SELECT h.status || ' ' || h.initiated_by FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
	  . "WHERE s.pgt_name = 'f_st' ORDER BY refresh_id DESC LIMIT 1"), 'COMPLETED SCHEDULER', '... latest history row COMPLETED by SCHEDULER');

# A failure whose cause is fixed without DML: the pending change is still
# there and must be applied.
sql('postgres', q{
CREATE ROLE alice;
GRANT CREATE ON SCHEMA public TO alice;
CREATE TABLE p_src (id int PRIMARY KEY, k int);
CREATE TABLE p_lbl (k int PRIMARY KEY, label text);
INSERT INTO p_lbl VALUES (1, 'one'), (2, 'two');
INSERT INTO p_src VALUES (1, 1);
GRANT SELECT, TRIGGER ON p_src, p_lbl TO alice;
SET ROLE alice;
SELECT pgtrickle.create_stream_table('p_st', 'SELECT s.id, l.label FROM p_src s JOIN p_lbl l ON l.k = s.k', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
RESET ROLE;
REVOKE SELECT ON p_lbl FROM alice;
});
my $pq = 'SELECT s.id, l.label FROM p_src s JOIN p_lbl l ON l.k = s.k';
sql('postgres', 'INSERT INTO p_src VALUES (2, 2)');
wait_ok('postgres', 'SELECT (' . hist_q('p_st', "h.status = 'FAILED' AND h.error_message LIKE '%permission denied%'") . ') > 0', 't', 30,
	'refresh fails while the owner lacks SELECT on a source');
sql('postgres', 'GRANT SELECT ON p_lbl TO alice');
sql('postgres', "SELECT pgtrickle.resume_stream_table('p_st')");
wait_ok('postgres', diff_sql('p_st', 'id, label', $pq), '0 0', 15,
	'privilege granted again (no DML) and resume_stream_table: the pending change is applied');

# FULL stream tables: the same accounting
sql('postgres', q{
CREATE TABLE ff_src (id int PRIMARY KEY, x int);
INSERT INTO ff_src VALUES (1, 1);
SELECT pgtrickle.create_stream_table('ff_st', 'SELECT id, 10 / x AS q FROM ff_src', schedule => '1s', refresh_mode => 'FULL');
INSERT INTO ff_src VALUES (2, 0);
});
wait_ok('postgres', "SELECT status || ' ' || consecutive_errors FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'ff_st'",
	'ERROR 3', 20, 'FULL stream table: ERROR after 3 failed refreshes');
is(history('postgres', 'ff_st', "h.status = 'FAILED' AND h.action = 'FULL' AND h.initiated_by = 'SCHEDULER'"), '3', '... 3 FAILED FULL rows');
sql('postgres', "DELETE FROM ff_src WHERE x = 0; SELECT pgtrickle.resume_stream_table('ff_st')");
wait_ok('postgres', diff_sql('ff_st', 'id, q', 'SELECT id, 10 / x AS q FROM ff_src') . " || ' ' || (SELECT status FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'ff_st')",
	'0 0 ACTIVE', 15, '... fixed and resumed: ACTIVE and refreshed');
wait_ok('postgres', 'SELECT (' . hist_q('ff_st', "h.status = 'COMPLETED' AND h.initiated_by = 'SCHEDULER' AND h.start_time > (SELECT max(h2.start_time) FROM pgtrickle.pgt_refresh_history h2 JOIN pgtrickle.pgt_stream_tables s2 USING (pgt_id) WHERE s2.pgt_name = 'ff_st' AND h2.status = 'FAILED')") . ') > 0',
	't', 15, '... with a COMPLETED scheduler refresh after the failures');

# pg_trickle.max_consecutive_errors = 1
set_guc('pg_trickle.max_consecutive_errors', '1');
sql('postgres', q{
CREATE TABLE g_src (id int PRIMARY KEY, x int);
INSERT INTO g_src VALUES (1, 1);
SELECT pgtrickle.create_stream_table('g_st', 'SELECT id, 10 / x AS q FROM g_src', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
INSERT INTO g_src VALUES (2, 0);
});
wait_ok('postgres', "SELECT status || ' ' || consecutive_errors FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'g_st'",
	'ERROR 1', 15, 'max_consecutive_errors = 1: ERROR after one failure');
set_guc('pg_trickle.max_consecutive_errors', undef);
is(sql('postgres', 'SELECT count(*) FROM ok_st'), sql('postgres', 'SELECT count(*) FROM ok_src'), 'ok_st never stopped');

# ------------------------------------------------------------------ kill -9

sql('postgres', 'CREATE DATABASE kdb');
sql('kdb', q{
CREATE EXTENSION pg_trickle;
CREATE TABLE k_cust (id int PRIMARY KEY, region text);
CREATE TABLE k_ord (id bigserial PRIMARY KEY, cust_id int, amount int);
INSERT INTO k_cust SELECT i, (ARRAY['N', 'S', 'E', 'W'])[1 + i % 4] FROM generate_series(1, 20) i;
INSERT INTO k_ord (cust_id, amount) SELECT 1 + i % 23, i % 100 FROM generate_series(1, 300) i;
CREATE PROCEDURE k_dml(n int) LANGUAGE plpgsql AS $$
DECLARE
    r float8;
    maxid bigint;
BEGIN
    FOR i IN 1 .. n LOOP
        r := random();
        maxid := (SELECT coalesce(max(id), 1) FROM k_ord);
        IF r < 0.45 THEN
            INSERT INTO k_ord (cust_id, amount)
                SELECT 1 + floor(random() * 23)::int, floor(random() * 100)::int FROM generate_series(1, 1 + floor(random() * 3)::int);
        ELSIF r < 0.65 THEN
            UPDATE k_ord SET amount = amount + 7 WHERE id = 1 + floor(random() * maxid)::bigint;
        ELSIF r < 0.75 THEN
            UPDATE k_ord SET cust_id = 1 + floor(random() * 23)::int WHERE id % 41 = floor(random() * 41)::int;
        ELSIF r < 0.9 THEN
            DELETE FROM k_ord WHERE id = 1 + floor(random() * maxid)::bigint;
        ELSE
            UPDATE k_cust SET region = (ARRAY['N', 'S', 'E', 'W'])[1 + floor(random() * 4)::int]
             WHERE id = 1 + floor(random() * 20)::int;
        END IF;
        COMMIT;
        PERFORM pg_sleep(0.002);
    END LOOP;
END $$;
SELECT pgtrickle.create_stream_table('k_filter', 'SELECT id, cust_id, amount FROM k_ord WHERE amount > 50', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('k_agg', 'SELECT cust_id, count(*) AS n, sum(amount) AS s FROM k_ord GROUP BY cust_id', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('k_join', 'SELECT o.id, o.amount, c.region FROM k_ord o JOIN k_cust c ON c.id = o.cust_id', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('k_chain', 'SELECT region, count(*) AS n, sum(amount) AS s FROM k_join GROUP BY region', schedule => 'calculated', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('k_left', 'SELECT c.id AS cid, c.region, o.id AS oid FROM k_cust c LEFT JOIN k_ord o ON o.cust_id = c.id AND o.amount < 10', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('k_full', 'SELECT region, count(*) AS n FROM k_cust GROUP BY region', schedule => '1s', refresh_mode => 'FULL');
});

my @kst = (
	[ 'k_filter', 'id, cust_id, amount', 'SELECT id, cust_id, amount FROM k_ord WHERE amount > 50' ],
	[ 'k_agg', 'cust_id, n, s', 'SELECT cust_id, count(*) AS n, sum(amount) AS s FROM k_ord GROUP BY cust_id' ],
	[ 'k_join', 'id, amount, region', 'SELECT o.id, o.amount, c.region FROM k_ord o JOIN k_cust c ON c.id = o.cust_id' ],
	[ 'k_chain', 'region, n, s', 'SELECT c.region, count(*) AS n, sum(o.amount) AS s FROM k_ord o JOIN k_cust c ON c.id = o.cust_id GROUP BY c.region' ],
	[ 'k_left', 'cid, region, oid', 'SELECT c.id AS cid, c.region, o.id AS oid FROM k_cust c LEFT JOIN k_ord o ON o.cust_id = c.id AND o.amount < 10' ],
	[ 'k_full', 'region, n', 'SELECT region, count(*) AS n FROM k_cust GROUP BY region' ],
);

sub all_exact
{
	my ($what, $timeout) = @_;
	for my $k (@kst)
	{
		wait_ok('kdb', diff_sql(@$k), '0 0', $timeout, "$what: $k->[0] equals its query");
	}
}

wait_ok('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = 'kdb'",
	'1', 30, 'scheduler of kdb running');
sql('kdb', 'CALL k_dml(100)');
all_exact('before the kill', 30);

my $round = 0;
for my $waitpoint ([ 'refresh-after-snapshot', 1 ], [ 'refresh-before-record', 2 ])
{
	my ($point, $n) = @$waitpoint;
	$round++;
	set_guc('pg_trickle.test_waitpoint', $point);

	# hold the waitpoint's lock: the scheduler's next refresh stops there
	my $holder = $node->background_psql('kdb', on_error_stop => 0);
	$holder->query_safe("SELECT pg_advisory_lock(7255, $n)");
	my $dml = $node->background_psql('kdb', on_error_stop => 0);
	$dml->query_until(qr/dml started/, "\\echo dml started\nCALL k_dml(1000000);\n");

	wait_ok('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = 'kdb' "
		  . "AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
		'1', 30, "round $round: scheduler held at waitpoint $point");
	my $pid = sql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = 'kdb'");
	my $txid = sql('kdb', 'SELECT txid_current()');
	# the client keeps committing changes while the refresh hangs
	wait_ok('kdb', "SELECT txid_current() > $txid + 100", 't', 30, "round $round: DML keeps committing meanwhile");
	is(sql('kdb', "SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE status = 'RUNNING'"), '1',
		"round $round: the held refresh shows as RUNNING in the history");

	my $log_off = -s $node->logfile;
	ok(kill('KILL', $pid), "round $round: SIGKILL to the scheduler (pid $pid)");
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_off);
	pass("round $round: postmaster restarts all processes");
	eval { $holder->{run}->kill_kill; };
	eval { $dml->{run}->kill_kill; };

	wait_ok('postgres', 'SELECT 1', '1', 60, "round $round: server accepts connections again");
	wait_ok('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle launcher'", '1', 30,
		"round $round: launcher back");
	wait_ok('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = 'kdb' AND pid <> $pid",
		'1', 30, "round $round: new scheduler for kdb");
	set_guc('pg_trickle.test_waitpoint', undef);

	wait_ok('kdb', "SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE status = 'RUNNING'", '0', 30,
		"round $round: no RUNNING history row left");
	ok(sql('kdb', "SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE status = 'FAILED' AND error_message LIKE 'interrupted%'") >= $round,
		"round $round: the interrupted refresh is recorded as FAILED");

	# more changes after recovery, then the stream tables must catch up
	sql('kdb', 'CALL k_dml(150)');
	all_exact("round $round: after kill -9 and recovery", 60);
	is(sql('kdb', "SELECT count(*) FROM pgtrickle.pgt_stream_tables WHERE status <> 'ACTIVE' OR consecutive_errors <> 0"), '0',
		"round $round: all stream tables ACTIVE without errors");
}

$node->stop;
done_testing();
