# Copyright (c) pg_trickle contributors
#
# 026_scheduler_drop_during_refresh.pl — a stream table dropped while the
# scheduler is about to refresh it, or is refreshing it, is skipped
# quietly: no error in the server log, no FAILED history, the scheduler
# keeps running and keeps refreshing the other stream tables.
#
#   round 1: drop_stream_table() in an open transaction; the scheduler,
#     due to refresh the stream table, waits for it; then COMMIT.  (This
#     logged a foreign-key error from the history row the scheduler
#     inserted for the deleted stream table, and the scheduler exited.)
#   round 2: the same with ROLLBACK: the stream table survives and is
#     refreshed.
#   round 3: the scheduler holds at the waitpoint refresh-after-snapshot;
#     drop_stream_table() waits for the refresh, which completes, then the
#     drop.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PgtTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PgtTest::start_node('dropref');

sub sql { return PgtTest::sql($node, @_); }

sub wait_ok
{
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return PgtTest::wait_ok($node, @_);
}

sub set_guc
{
	my ($name, $value) = @_;
	my $off = -s $node->logfile;
	sql('postgres', defined $value ? "ALTER SYSTEM SET $name = '$value'" : "ALTER SYSTEM RESET $name");
	sql('postgres', 'SELECT pg_reload_conf()');
	$node->wait_for_log(qr/received SIGHUP, reloading configuration files/, $off);
	# the postmaster signals its children right after logging that
	usleep(300_000);
}

my $sched_q = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = 'postgres'";

sql('postgres', q{
CREATE EXTENSION pg_trickle;
CREATE TABLE src (id int PRIMARY KEY, g int);
CREATE TABLE other (id int PRIMARY KEY);
SELECT pgtrickle.create_stream_table('keep', 'SELECT id FROM other',
    schedule => '1s', refresh_mode => 'DIFFERENTIAL');
});
wait_ok('postgres', "SELECT count(*) FROM ($sched_q) s", '1', 30, 'scheduler running');
my $pid = sql('postgres', $sched_q);

my $next_id = 0;
sub keep_refreshing
{
	my ($what) = @_;
	$next_id++;
	sql('postgres', "INSERT INTO other VALUES ($next_id)");
	wait_ok('postgres', 'SELECT count(*) FROM keep', "$next_id", 30, "$what: the scheduler still refreshes other stream tables");
}

sub check_quiet
{
	my ($what, $log_off) = @_;
	my $log = substr(slurp_file($node->logfile), $log_off);
	my @bad = $log =~ /^.*(?:ERROR|FATAL|PANIC|WARNING|could not refresh).*$/mg;
	is(scalar(@bad), 0, "$what: nothing logged at WARNING or above") or diag join("\n", @bad);
	is(sql('postgres', $sched_q), $pid, "$what: the same scheduler is running");
	is(sql('postgres', "SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE status <> 'COMPLETED'"), '0',
		"$what: no FAILED or RUNNING history row");
	is(sql('postgres', "SELECT status || ' ' || consecutive_errors FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'keep'"),
		'ACTIVE 0', "$what: the other stream table has no error");
}

for my $round ([ 1, 'COMMIT' ], [ 2, 'ROLLBACK' ])
{
	my ($r, $end) = @$round;
	$pid = sql('postgres', $sched_q);
	sql('postgres', q{
SELECT pgtrickle.create_stream_table('dropped', 'SELECT g, count(*) AS n FROM src GROUP BY g',
    schedule => '1s', refresh_mode => 'DIFFERENTIAL');
});
	# a change makes the stream table due; the scheduler is paused until
	# the drop is under way (writers of src wait for the drop)
	set_guc('pg_trickle.enabled', 'off');
	wait_ok('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $pid", 'idle', 30,
		"round $r: scheduler paused");
	sql('postgres', "INSERT INTO src VALUES ($r, 1)");
	my $log_off = -s $node->logfile;
	my $s = $node->background_psql('postgres', on_error_stop => 1);
	$s->query_safe("BEGIN");
	$s->query_safe("SELECT pgtrickle.drop_stream_table('dropped')");
	set_guc('pg_trickle.enabled', undef);
	wait_ok('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND wait_event_type = 'Lock'",
		'1', 30, "round $r: the scheduler waits for the dropping transaction");
	$s->query_safe($end);
	$s->quit;
	if ($end eq 'COMMIT')
	{
		is(sql('postgres', "SELECT count(*) FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'dropped'"), '0',
			"round $r: the stream table is gone");
	}
	else
	{
		wait_ok('postgres', 'SELECT count(*) FROM dropped', '1', 30, "round $r: the stream table survives and is refreshed");
		sql('postgres', "SELECT pgtrickle.drop_stream_table('dropped')");
	}
	keep_refreshing("round $r");
	check_quiet("round $r", $log_off);
}

# round 3: dropped while the refresh runs (held at a waitpoint; the other
# stream table is not due meanwhile, so only this refresh stops there)
sql('postgres', q{
SELECT pgtrickle.alter_stream_table('keep', schedule => '1h');
SELECT pgtrickle.create_stream_table('dropped', 'SELECT g, count(*) AS n FROM src GROUP BY g',
    schedule => '1s', refresh_mode => 'DIFFERENTIAL');
});
set_guc('pg_trickle.test_waitpoint', 'refresh-after-snapshot');
$pid = sql('postgres', $sched_q);
my $log_off = -s $node->logfile;
my $holder = $node->background_psql('postgres', on_error_stop => 1);
$holder->query_safe('SELECT pg_advisory_lock(7255, 1)');
sql('postgres', 'INSERT INTO src VALUES (3, 2)');
wait_ok('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND wait_event = 'advisory'",
	'1', 30, 'round 3: the scheduler holds at the waitpoint');
my $dropper = $node->background_psql('postgres', on_error_stop => 1);
$dropper->query_until(qr/drop started/, "\\echo drop started\nSELECT pgtrickle.drop_stream_table('dropped');\n");
wait_ok('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND wait_event_type = 'Lock'",
	'1', 30, 'round 3: the drop waits for the refresh')
  or diag sql('postgres', "SELECT backend_type, state, wait_event_type, wait_event, query FROM pg_stat_activity");
$holder->query_safe('SELECT pg_advisory_unlock(7255, 1)');
$holder->quit;
$dropper->quit;
wait_ok('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'dropped'", '0', 30, 'round 3: the drop completes');
set_guc('pg_trickle.test_waitpoint', undef);
sql('postgres', "SELECT pgtrickle.alter_stream_table('keep', schedule => '1s')");
keep_refreshing('round 3');
check_quiet('round 3', $log_off);

$node->stop;
done_testing();
