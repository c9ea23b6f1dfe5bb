# Copyright (c) pg_trickle contributors
#
# 020_scheduler.pl — the launcher and the per-database schedulers: their
# life cycle, and each kind of schedule.
#
#   lifecycle: the launcher runs after start; no scheduler stays in a
#     database without pg_trickle; CREATE EXTENSION starts one at once, DROP
#     EXTENSION makes it exit, CREATE EXTENSION again brings it back; a second
#     database gets a second scheduler; DROP DATABASE of a database with
#     pg_trickle works; pg_trickle.enabled = off (ALTER SYSTEM + reload)
#     stops refreshing and on resumes it; after a restart the launcher and
#     the schedulers come back and keep refreshing.
#   schedules: '1s' DIFFERENTIAL (also: a change after a quiet second is
#     applied at once, woken by the commit; the scheduler's writes reach
#     pg_stat_user_tables), '2s' FULL, cron every second and every
#     other second, 'calculated' with and without readers, a schedule changed
#     by alter_stream_table, SUSPENDED and back to ACTIVE, and quick_health
#     of idle, up-to-date stream tables.
#
# Nothing here calls refresh_stream_table(): every refresh is the
# scheduler's.  No fixed sleep asserts anything: positive checks poll with a
# bounded timeout; checks that something does NOT happen watch for a fixed
# window (a few schedule periods) and fail at the first sign of it.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PgtTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

# ------------------------------------------------------------------ helpers

my $node = PgtTest::start_node('sched', "log_lock_waits = on\n");

sub sql { return PgtTest::sql($node, @_); }
sub poll_until { return PgtTest::poll_until($node, @_); }

sub wait_ok
{
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return PgtTest::wait_ok($node, @_);
}

sub diff_sql { return PgtTest::diff_sql(@_); }

# stays(db, sql, expected, seconds, name): sql returns expected during the
# whole window (sampled every 100 ms).
sub stays
{
	my ($db, $q, $expected, $window, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $t0 = time;
	my ($out, $err);
	while (time - $t0 < $window)
	{
		$node->psql($db, $q, stdout => \$out, stderr => \$err);
		$out //= '';
		if ($out ne $expected || ($err // '') ne '')
		{
			fail($name);
			diag sprintf("after %.2fs\n  %s\nreturned '%s' instead of '%s'%s",
				time - $t0, $q, $out, $expected, ($err // '') ne '' ? " (stderr: $err)" : '');
			return 0;
		}
		usleep(100_000);
	}
	pass($name);
	return 1;
}

sub n_schedulers
{
	my ($db) = @_;
	return "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = '$db'";
}

sub scheduler_pid
{
	my ($db) = @_;
	return sql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = '$db'");
}

my $launcher_q = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle launcher'";

sub history_count
{
	my ($db, $st, $where) = @_;
	return sql($db, "SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
		  . "WHERE s.pgt_name = '$st'" . ($where ? " AND $where" : ''));
}

# ---------------------------------------------------------------- lifecycle

wait_ok('postgres', $launcher_q, '1', 30, 'launcher runs after start');

# A database without pg_trickle may see a scheduler start, find nothing
# and exit; none may stay.
stays('postgres', n_schedulers('postgres') . " AND backend_start < pg_catalog.clock_timestamp() - interval '1 s'",
	'0', 3, 'no scheduler stays in a database without pg_trickle');

sql('postgres', 'CREATE DATABASE db1');
sql('db1', 'CREATE EXTENSION pg_trickle');
my $secs = wait_ok('postgres', n_schedulers('db1'), '1', 30, 'CREATE EXTENSION starts a scheduler in db1');
ok(defined $secs && $secs < 3, 'the scheduler started within 3 s of CREATE EXTENSION')
  or diag 'took ' . ($secs // 'more than 30') . ' s';
wait_ok('db1', 'SELECT scheduler_running FROM pgtrickle.quick_health', 't', 10,
	'quick_health.scheduler_running is true');
is(sql('db1', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND application_name = 'pg_trickle scheduler'"),
	'1', 'the scheduler shows application_name pg_trickle scheduler');

my $pid1 = scheduler_pid('db1');
sql('db1', 'DROP EXTENSION pg_trickle');
wait_ok('postgres', n_schedulers('db1'), '0', 15, 'DROP EXTENSION makes the scheduler exit');
stays('postgres', n_schedulers('db1') . " AND backend_start < pg_catalog.clock_timestamp() - interval '1 s'",
	'0', 2, 'no scheduler stays in db1 after DROP EXTENSION');

sql('db1', 'CREATE EXTENSION pg_trickle');
$secs = wait_ok('postgres', n_schedulers('db1'), '1', 30, 'CREATE EXTENSION again starts a scheduler again');
ok(defined $secs && $secs < 3, 'the scheduler started again within 3 s')
  or diag 'took ' . ($secs // 'more than 30') . ' s';
isnt(scheduler_pid('db1'), $pid1, 'it is a new process');

sql('postgres', 'CREATE DATABASE db2');
sql('db2', 'CREATE EXTENSION pg_trickle');
wait_ok('postgres', n_schedulers('db2'), '1', 30, 'CREATE EXTENSION in db2 starts a second scheduler');
is(sql('postgres', "SELECT count(DISTINCT pid) || ' ' || count(DISTINCT datname) FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname IN ('db1', 'db2')"),
	'2 2', 'one scheduler per database, two databases');
is(sql('postgres', $launcher_q), '1', 'still one launcher');

# DROP DATABASE waits at most 5 s for other sessions of the database to go
# away; pg_trickle's scheduler must not be one that stays.
sql('postgres', 'CREATE DATABASE db3');
sql('db3', 'CREATE EXTENSION pg_trickle');
wait_ok('postgres', n_schedulers('db3'), '1', 30, 'scheduler in db3');
{
	my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE db3');
	is($ret, 0, 'DROP DATABASE of a database with pg_trickle succeeds')
	  or diag "DROP DATABASE db3: $err";
	if ($ret != 0)
	{
		sql('postgres', 'DROP DATABASE db3 WITH (FORCE)');
	}
}
wait_ok('postgres', n_schedulers('db3'), '0', 10, 'no scheduler left for the dropped database');

# ---------------------------------------------------------------- schedules

sql('db1', q{
CREATE TABLE sd_src (id int PRIMARY KEY, v int);
INSERT INTO sd_src SELECT g, g % 5 FROM generate_series(1, 20) g;
SELECT pgtrickle.create_stream_table('sd_st', 'SELECT id, v FROM sd_src WHERE v > 0', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
});
sql('db1', 'INSERT INTO sd_src VALUES (1001, 7)');
$secs = wait_ok('db1', 'SELECT count(*) FROM sd_st WHERE id = 1001', '1', 30, "'1s' DIFFERENTIAL stream table picks up an INSERT");
ok(defined $secs && $secs < 3, "... within 3 s") or diag 'took ' . ($secs // 'more than 30') . ' s';
is(history_count('db1', 'sd_st', "h.initiated_by = 'SCHEDULER' AND h.status = 'COMPLETED' AND h.action = 'DIFFERENTIAL'") > 0 ? 'yes' : 'no',
	'yes', "history has a COMPLETED DIFFERENTIAL refresh initiated_by SCHEDULER");
# Woken at commit: a change to the source of a '1s' stream table that was
# refreshed over a second ago is due at once, so the commit's wake-up (not
# the next tick of the scheduler) must bring it in.
{
	my @lat;
	for my $i (1 .. 5)
	{
		usleep(1_100_000);    # the precondition: a quiet second, not an assertion
		sql('db1', "INSERT INTO sd_src VALUES (50$i, 1)");
		my ($ok, $s) = poll_until('db1', "SELECT count(*) FROM sd_st WHERE id = 50$i", '1', 10);
		push @lat, $ok ? $s : 99;
	}
	my @sorted = sort { $a <=> $b } @lat;
	ok($sorted[2] < 0.3, sprintf("after a quiet second an INSERT shows up within 0.3 s (median of 5: %.3fs)", $sorted[2]))
	  or diag 'latencies: ' . join(' ', map { sprintf('%.3f', $_) } @lat);
}
sql('db1', 'UPDATE sd_src SET v = v + 1 WHERE id % 3 = 0; DELETE FROM sd_src WHERE id % 7 = 0; UPDATE sd_src SET id = id + 100 WHERE id = 2');
wait_ok('db1', diff_sql('sd_st', 'id, v', 'SELECT id, v FROM sd_src WHERE v > 0'), '0 0', 30,
	'sd_st equals its query after UPDATE, DELETE and a key change');

# The scheduler's writes must reach the cumulative statistics like any
# backend's: autovacuum and autoanalyze of stream tables (and of the
# catalog and change buffers the scheduler writes) depend on them.
sql('db1', q{
CREATE TABLE ps_src (id int PRIMARY KEY);
SELECT pgtrickle.create_stream_table('ps_st', 'SELECT id FROM ps_src', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
});
sql('db1', 'INSERT INTO ps_src SELECT generate_series(1, 500)');
wait_ok('db1', 'SELECT count(*) FROM ps_st', '500', 30, 'the scheduler inserted 500 rows into ps_st');
wait_ok('db1', "SELECT n_tup_ins >= 500 FROM pg_stat_user_tables WHERE relname = 'ps_st'", 't', 20,
	"the scheduler's inserts show in pg_stat_user_tables.n_tup_ins of the stream table");

# FULL, '2s': refreshes on its schedule, whether or not anything changed,
# and not more often.
sql('db1', q{SELECT pgtrickle.create_stream_table('sf_st', 'SELECT v, count(*) AS n FROM sd_src GROUP BY v', schedule => '2s', refresh_mode => 'FULL')});
wait_ok('db1', "SELECT count(*) >= 3 FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
	  . "WHERE s.pgt_name = 'sf_st' AND h.initiated_by = 'SCHEDULER' AND h.status = 'COMPLETED' AND h.action = 'FULL'",
	't', 30, "'2s' FULL stream table is refreshed by the scheduler repeatedly");
is(sql('db1', "SELECT coalesce(min(gap), 99) >= 1.9 FROM (SELECT extract(epoch FROM h.start_time - lag(h.start_time) OVER (ORDER BY h.refresh_id)) AS gap "
	  . "FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
	  . "WHERE s.pgt_name = 'sf_st' AND h.initiated_by = 'SCHEDULER') x"),
	't', "... never twice within 2 s");
sql('db1', 'INSERT INTO sd_src VALUES (1002, 42)');
wait_ok('db1', diff_sql('sf_st', 'v, n', 'SELECT v, count(*) AS n FROM sd_src GROUP BY v'), '0 0', 30,
	'FULL stream table picks up an INSERT');

# cron, 6 fields: every second (DIFFERENTIAL) and every other second (FULL)
sql('db1', q{
SELECT pgtrickle.create_stream_table('sc_st', 'SELECT id, v * 2 AS v2 FROM sd_src', schedule => '* * * * * *', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('sc2_st', 'SELECT count(*) AS n, sum(v) AS s FROM sd_src', schedule => '*/2 * * * * *', refresh_mode => 'FULL');
});
sql('db1', 'INSERT INTO sd_src VALUES (1003, 3)');
$secs = wait_ok('db1', 'SELECT count(*) FROM sc_st WHERE id = 1003', '1', 30, "cron '* * * * * *' stream table picks up an INSERT");
ok(defined $secs && $secs < 3, "... within 3 s") or diag 'took ' . ($secs // 'more than 30') . ' s';
ok(history_count('db1', 'sc_st', "h.initiated_by = 'SCHEDULER' AND h.action = 'DIFFERENTIAL' AND h.status = 'COMPLETED'") > 0,
	'... refreshed by the scheduler');
wait_ok('db1', "SELECT count(*) >= 3 FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
	  . "WHERE s.pgt_name = 'sc2_st' AND h.initiated_by = 'SCHEDULER' AND h.status = 'COMPLETED'",
	't', 30, "cron '*/2 * * * * *' FULL stream table is refreshed repeatedly");
is(sql('db1', "SELECT string_agg(DISTINCT (floor(extract(second FROM h.start_time AT TIME ZONE 'UTC'))::int % 2)::text, ',') "
	  . "FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
	  . "WHERE s.pgt_name = 'sc2_st' AND h.initiated_by = 'SCHEDULER'"),
	'0', '... always in an even second');
wait_ok('db1', diff_sql('sc2_st', 'n, s', 'SELECT count(*) AS n, sum(v) AS s FROM sd_src'), '0 0', 30,
	'... and equals its query');

# 'calculated': the upstream follows its '1s' reader; alone it uses
# pg_trickle.default_schedule_seconds (1).
sql('db1', q{
CREATE TABLE cu_src (id int PRIMARY KEY, g int, v int);
INSERT INTO cu_src SELECT i, i % 4, i FROM generate_series(1, 12) i;
SELECT pgtrickle.create_stream_table('cu_st', 'SELECT g, count(*) AS n, sum(v) AS s FROM cu_src GROUP BY g', schedule => 'calculated', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('cr_st', 'SELECT g, n, s FROM cu_st WHERE n >= 3', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('cn_st', 'SELECT id, v FROM cu_src WHERE g = 1', schedule => 'calculated', refresh_mode => 'DIFFERENTIAL');
});
is(sql('db1', "SELECT count(*) FROM pgtrickle.pgt_status() WHERE name IN ('public.cu_st', 'public.cn_st') AND schedule = 'calculated'"),
	'2', "pgt_status() shows the 'calculated' schedules");
sql('db1', 'INSERT INTO cu_src VALUES (100, 9, 5), (101, 9, 6), (102, 9, 7), (103, 1, 1)');
$secs = wait_ok('db1', diff_sql('cr_st', 'g, n, s', 'SELECT g, count(*) AS n, sum(v) AS s FROM cu_src GROUP BY g HAVING count(*) >= 3'),
	'0 0', 30, "'1s' reader of a 'calculated' stream table catches up through it");
ok(defined $secs && $secs < 4, '... within 4 s') or diag 'took ' . ($secs // 'more than 30') . ' s';
wait_ok('db1', diff_sql('cu_st', 'g, n, s', 'SELECT g, count(*) AS n, sum(v) AS s FROM cu_src GROUP BY g'), '0 0', 10,
	"'calculated' upstream equals its query");
ok(history_count('db1', 'cu_st', "h.initiated_by = 'SCHEDULER' AND h.action = 'DIFFERENTIAL' AND h.status = 'COMPLETED'") > 0,
	"... refreshed by the scheduler");
wait_ok('db1', diff_sql('cn_st', 'id, v', 'SELECT id, v FROM cu_src WHERE g = 1'), '0 0', 30,
	"'calculated' stream table without readers is refreshed (default_schedule_seconds)");

# alter_stream_table(schedule => ...) takes effect
sql('db1', q{
CREATE TABLE sa_src (id int PRIMARY KEY);
SELECT pgtrickle.create_stream_table('sa_st', 'SELECT id FROM sa_src', schedule => '1h', refresh_mode => 'DIFFERENTIAL');
});
sql('db1', 'INSERT INTO sa_src VALUES (1)');
stays('db1', 'SELECT count(*) FROM sa_st', '0', 3, "'1h' stream table is not refreshed within 3 s");
sql('db1', "SELECT pgtrickle.alter_stream_table('sa_st', schedule => '1s')");
$secs = wait_ok('db1', 'SELECT count(*) FROM sa_st', '1', 30, "after alter_stream_table(schedule => '1s') it is refreshed");
ok(defined $secs && $secs < 3, '... within 3 s') or diag 'took ' . ($secs // 'more than 30') . ' s';
sql('db1', "SELECT pgtrickle.alter_stream_table('sa_st', schedule => '1h')");
sql('db1', 'INSERT INTO sa_src VALUES (2)');
stays('db1', 'SELECT count(*) FROM sa_st', '1', 3, "back on '1h': not refreshed within 3 s");

# SUSPENDED stream tables are skipped; ACTIVE again, they catch up
sql('db1', q{
CREATE TABLE ss_src (id int PRIMARY KEY);
SELECT pgtrickle.create_stream_table('ss_st', 'SELECT id FROM ss_src', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.alter_stream_table('ss_st', status => 'SUSPENDED');
});
my $before = history_count('db1', 'ss_st');
sql('db1', 'INSERT INTO ss_src VALUES (1), (2)');
stays('db1', 'SELECT count(*) FROM ss_st', '0', 3, 'SUSPENDED stream table is not refreshed');
is(history_count('db1', 'ss_st'), $before, '... and has no new history rows');
sql('db1', "SELECT pgtrickle.alter_stream_table('ss_st', status => 'ACTIVE')");
$secs = wait_ok('db1', 'SELECT count(*) FROM ss_st', '2', 30, 'status ACTIVE again: it catches up');
ok(defined $secs && $secs < 3, '... within 3 s') or diag 'took ' . ($secs // 'more than 30') . ' s';

# ------------------------------------------------------------ pg_trickle.enabled

my $log_offset = -s $node->logfile;
sql('db1', 'ALTER SYSTEM SET pg_trickle.enabled = off');
sql('db1', 'SELECT pg_reload_conf()');
$node->wait_for_log(qr/parameter "pg_trickle\.enabled" changed to "off"/, $log_offset);
# The postmaster signals its children right after logging that.  Once the
# scheduler is seen outside a pass, it can only start another after it has
# read the new setting.
usleep(200_000);
wait_ok('postgres', "SELECT state FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = 'db1'",
	'idle', 30, 'scheduler between passes after the reload');
my $t_off = sql('db1', 'SELECT pg_catalog.clock_timestamp()');
sql('db1', 'INSERT INTO sd_src VALUES (2001, 1)');
stays('db1', 'SELECT count(*) FROM sd_st WHERE id = 2001', '0', 3, 'pg_trickle.enabled = off: no refresh');
is(sql('db1', "SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE start_time > '$t_off'"), '0',
	'... no refresh of any stream table (FULL and cron ones included)');
sql('db1', 'ALTER SYSTEM RESET pg_trickle.enabled');
sql('db1', 'SELECT pg_reload_conf()');
$secs = wait_ok('db1', 'SELECT count(*) FROM sd_st WHERE id = 2001', '1', 30, 'pg_trickle.enabled back on: refreshed again');
ok(defined $secs && $secs < 4, '... within 4 s') or diag 'took ' . ($secs // 'more than 30') . ' s';

# ------------------------------------------------------------ idle health

# Stream tables with nothing to apply are up to date, not stale.
sql('db2', q{
CREATE TABLE h_src (id int PRIMARY KEY);
INSERT INTO h_src VALUES (1);
SELECT pgtrickle.create_stream_table('h1_st', 'SELECT id FROM h_src', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('h2_st', 'SELECT count(*) AS n FROM h_src', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
});
sql('db2', 'INSERT INTO h_src VALUES (2)');
wait_ok('db2', 'SELECT (SELECT count(*) FROM h1_st)::text || (SELECT n FROM h2_st)::text', '22', 30, 'db2 stream tables refreshed');
stays('db2', "SELECT stale_tables || ' ' || status FROM pgtrickle.quick_health", '0 OK', 4,
	"idle, up-to-date '1s' stream tables are not reported stale by quick_health");

# ------------------------------------------------------------ restart

$node->restart;
wait_ok('postgres', $launcher_q, '1', 30, 'launcher back after restart');
wait_ok('postgres', n_schedulers('db1'), '1', 30, 'scheduler of db1 back after restart');
wait_ok('postgres', n_schedulers('db2'), '1', 30, 'scheduler of db2 back after restart');
sql('db1', 'INSERT INTO sd_src VALUES (3001, 2); INSERT INTO cu_src VALUES (200, 9, 1)');
sql('db2', 'INSERT INTO h_src VALUES (3)');
wait_ok('db1', diff_sql('sd_st', 'id, v', 'SELECT id, v FROM sd_src WHERE v > 0'), '0 0', 30, 'db1: sd_st refreshed after restart');
wait_ok('db1', diff_sql('cr_st', 'g, n, s', 'SELECT g, count(*) AS n, sum(v) AS s FROM cu_src GROUP BY g HAVING count(*) >= 3'),
	'0 0', 30, 'db1: calculated chain refreshed after restart');
wait_ok('db1', diff_sql('sc_st', 'id, v2', 'SELECT id, v * 2 AS v2 FROM sd_src'), '0 0', 30, 'db1: cron stream table refreshed after restart');
wait_ok('db2', 'SELECT (SELECT count(*) FROM h1_st)::text || (SELECT n FROM h2_st)::text', '33', 30, 'db2: refreshed after restart');
is(sql('db1', "SELECT count(*) FROM pgtrickle.pgt_stream_tables WHERE status NOT IN ('ACTIVE', 'SUSPENDED')"), '0',
	'no stream table in ERROR or INITIALIZING');

$node->stop;
done_testing();
