# Copyright (c) pg_trickle contributors
#
# 025_scheduler_parallel.pl — parallel refresh in dynamic workers, atomic
# diamonds, and auto_backoff.
#
#   parallel: four slow independent stream tables refresh at the same time
#     (overlapping history rows, "pg_trickle refresh worker" processes), at
#     most max_concurrent_refreshes at once, one at a time with
#     parallel_refresh_mode = off; a chain beside them never overlaps its
#     upstream; results equal their queries.
#   kill -9: a refresh worker killed mid-refresh; after the restart the
#     interrupted refresh is FAILED and the next ones catch up exactly.
#   diamond: a -> b, a -> c, b + c -> d where d checks that b and c agree.
#     Under concurrent DML, sampled continuously, d never sees b and c from
#     different moments with diamond_consistency = 'atomic' (c's own
#     schedule is an hour: 'fastest' refreshes it with b); with 'none' it
#     does, which shows the check can fail.  A member that fails rolls the
#     whole group back (SKIPPED history rows for the others).
#   auto_backoff: a stream table whose refresh takes longer than its
#     interval is refreshed about every 2 intervals; with auto_backoff off,
#     back to back.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PgtTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PgtTest::start_node('schedpar', q{
max_worker_processes = 16
restart_after_crash = on
pg_trickle.max_consecutive_errors = 1000
});

sub sql { return PgtTest::sql($node, 'postgres', $_[0]); }
sub wait_ok { return PgtTest::wait_ok($node, 'postgres', @_); }
sub set_guc { return PgtTest::set_guc($node, @_); }

# the most SCHEDULER refreshes of the given stream tables running at once,
# over the refreshes that started after $since
sub max_overlap
{
	my ($since, $names) = @_;
	my $ids = "(SELECT pgt_id FROM pgtrickle.pgt_stream_tables WHERE pgt_name IN ($names))";
	return sql(qq{
SELECT COALESCE(max((SELECT count(*) FROM pgtrickle.pgt_refresh_history s
                      WHERE s.initiated_by = 'SCHEDULER' AND s.pgt_id IN $ids
                        AND s.start_time <= r.start_time AND s.end_time > r.start_time)), 0)
  FROM pgtrickle.pgt_refresh_history r
 WHERE r.initiated_by = 'SCHEDULER' AND r.status = 'COMPLETED' AND r.pgt_id IN $ids
   AND r.start_time > '$since'});
}

# SQL for how many SCHEDULER refreshes each of $names completed after
# $since (the least of them)
sub min_refreshes_sql
{
	my ($since, $names) = @_;
	return qq{(SELECT COALESCE(min(n), 0) FROM (
  SELECT (SELECT count(*) FROM pgtrickle.pgt_refresh_history h
           WHERE h.pgt_id = s.pgt_id AND h.initiated_by = 'SCHEDULER'
             AND h.status = 'COMPLETED' AND h.start_time > '$since') AS n
    FROM pgtrickle.pgt_stream_tables s WHERE s.pgt_name IN ($names)) x)};
}

sub min_refreshes { return sql('SELECT ' . min_refreshes_sql(@_)); }

sub later { return sql("SELECT (clock_timestamp() + interval '$_[0] seconds')::text"); }

# ------------------------------------------------------------------ parallel

my $slow = join(', ', map { "'p$_'" } 1 .. 4);
sql(q{
CREATE EXTENSION pg_trickle;
CREATE TABLE src (id int PRIMARY KEY, v int);
INSERT INTO src SELECT g, g FROM generate_series(1, 100) g;
});
for my $i (1 .. 4)
{
	sql("SELECT pgtrickle.create_stream_table('p$i', "
		  . "'SELECT count(*) AS n, sum(v + $i) AS s FROM src CROSS JOIN (SELECT pg_sleep(0.6)) z', '1s', 'FULL')");
}
sql(q{
SELECT pgtrickle.create_stream_table('q1', 'SELECT id, v FROM src WHERE v % 2 = 0', '1s', 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('q2', 'SELECT count(*) AS n, sum(v) AS s FROM q1 CROSS JOIN (SELECT pg_sleep(0.3)) z', 'calculated', 'FULL');
SELECT pgtrickle.create_stream_table('q3', 'SELECT n, s FROM q2 WHERE n > 0', 'calculated', 'DIFFERENTIAL');
});
my $chain = "'q1', 'q2', 'q3'";

wait_ok("SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_trickle refresh worker'",
	't', 30, 'dynamic refresh workers run');
my $since = later(0);
sql('UPDATE src SET v = v + 1 WHERE id % 3 = 0');
wait_ok("SELECT (" . "SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
	  . "WHERE s.pgt_name IN ($slow) AND h.initiated_by = 'SCHEDULER' AND h.status = 'COMPLETED' AND h.start_time > '$since') >= 12",
	't', 60, 'the slow stream tables keep refreshing');
my $overlap = max_overlap($since, "$slow, $chain");
cmp_ok($overlap, '>=', 2, "refreshes overlap (max $overlap at once)");
cmp_ok($overlap, '<=', 4, 'at most max_concurrent_refreshes (4) at once');
is(max_overlap($since, "'q1', 'q2'") . ' ' . max_overlap($since, "'q2', 'q3'"), '1 1',
	'a stream table never refreshes while its upstream does');
my $pool = sql('SELECT max_workers, per_db_cap, parallel_mode FROM pgtrickle.worker_pool_status()');
is($pool, '4|4|on', 'worker_pool_status shows the limits');

set_guc('pg_trickle.max_concurrent_refreshes', 2);
$since = later(2);
wait_ok("SELECT " . min_refreshes_sql($since, $slow) . " >= 2", 't', 60, 'refreshing with max_concurrent_refreshes = 2');
is(max_overlap($since, "$slow, $chain"), '2', 'two refreshes at once, not more');

set_guc('pg_trickle.parallel_refresh_mode', 'off');
$since = later(2);
wait_ok("SELECT " . min_refreshes_sql($since, $slow) . " >= 2", 't', 60, 'refreshing with parallel_refresh_mode = off');
is(max_overlap($since, "$slow, $chain"), '1', 'one refresh at a time');
set_guc('pg_trickle.parallel_refresh_mode', 'on');
set_guc('pg_trickle.max_concurrent_refreshes', 4);

sub all_exact
{
	my ($what, $timeout, $with_chain) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my @checks;
	for my $i (1 .. 4)
	{
		push @checks, "(SELECT (n, s) = (SELECT count(*), sum(v + $i) FROM src) FROM p$i)";
	}
	if ($with_chain)
	{
		push @checks, '(SELECT count(*) = 0 FROM (SELECT id, v FROM q1 EXCEPT ALL SELECT id, v FROM src WHERE v % 2 = 0 '
		  . 'UNION ALL (SELECT id, v FROM src WHERE v % 2 = 0 EXCEPT ALL SELECT id, v FROM q1)) x)';
		push @checks, "(SELECT (n, s) = (SELECT count(*), sum(v) FROM src WHERE v % 2 = 0) FROM q3)";
	}
	return wait_ok('SELECT ' . join(' AND ', @checks), 't', $timeout, "$what: every stream table equals its query");
}
sql('INSERT INTO src SELECT g, g * 7 FROM generate_series(101, 160) g; DELETE FROM src WHERE id % 11 = 0');
all_exact('parallel', 60, 1);

# ------------------------------------------------------------------ kill -9

# Make the four slow stream tables due at the same moment, so that the
# scheduler hands three of them to workers, and hold every refresh before
# it records its result.
for my $st (qw(q3 q2 q1)) { sql("SELECT pgtrickle.drop_stream_table('$st')"); }
sql(join(';', map { "SELECT pgtrickle.alter_stream_table('p$_', schedule => '1h')" } 1 .. 4));
wait_ok("SELECT min(clock_timestamp() - last_refresh_at) > interval '1.5 s' FROM pgtrickle.pgt_stream_tables "
	  . "WHERE pgt_name IN ($slow)", 't', 30, 'the slow stream tables are idle');
set_guc('pg_trickle.test_waitpoint', 'refresh-before-record');
my $holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_safe('SELECT pg_advisory_lock(7255, 2)');
sql('BEGIN;' . join(';', map { "SELECT pgtrickle.alter_stream_table('p$_', schedule => '1s')" } 1 .. 4) . ';COMMIT');
wait_ok("SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_trickle refresh worker' "
	  . "AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
	't', 60, 'a refresh worker is held mid-refresh');
my $pid = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_trickle refresh worker' "
	  . "AND wait_event = 'advisory' LIMIT 1");
my $log_off = -s $node->logfile;
ok(kill('KILL', $pid), "SIGKILL to refresh worker $pid");
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_off);
eval { $holder->quit; };
$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';
set_guc('pg_trickle.test_waitpoint', '');
wait_ok("SELECT count(*) FILTER (WHERE status = 'RUNNING') = 0 AND count(*) FILTER (WHERE status = 'FAILED' "
	  . "AND error_message LIKE 'interrupted%') >= 1 FROM pgtrickle.pgt_refresh_history",
	't', 30, 'the interrupted refreshes are marked FAILED');
sql('UPDATE src SET v = v - 3 WHERE id % 4 = 1');
all_exact('after kill -9', 60);
is(sql("SELECT count(*) FROM pgtrickle.pgt_stream_tables WHERE status <> 'ACTIVE'"), '0', 'all stream tables ACTIVE');

for my $st (qw(p1 p2 p3 p4)) { sql("SELECT pgtrickle.drop_stream_table('$st')"); }

# ------------------------------------------------------------------ diamond

sql(q{
CREATE TABLE a (id int PRIMARY KEY, v int);
INSERT INTO a SELECT g, g FROM generate_series(1, 1000) g;
SELECT pgtrickle.create_stream_table('b', 'SELECT id, v FROM a', '1s', 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('c', 'SELECT id, v * 2 AS v2 FROM a', '1h', 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('d',
  'SELECT count(*) AS n, sum(CASE WHEN b.v * 2 IS DISTINCT FROM c.v2 THEN 1 ELSE 0 END) AS bad
     FROM b FULL JOIN c ON b.id = c.id', 'calculated', 'DIFFERENTIAL');
CREATE PROCEDURE diamond_dml(secs float8) LANGUAGE plpgsql AS $$
DECLARE k int; stop timestamptz := clock_timestamp() + make_interval(secs => secs);
BEGIN
  WHILE clock_timestamp() < stop LOOP
    k := 1 + (random() * 1199)::int;
    UPDATE a SET v = v + 1 WHERE id = 1 + (random() * 999)::int;
    DELETE FROM a WHERE id = k;
    IF random() < 0.6 THEN INSERT INTO a VALUES (k, k) ON CONFLICT (id) DO NOTHING; END IF;
    COMMIT;
    PERFORM pg_sleep(0.002);
  END LOOP;
END $$;
});
is(sql("SELECT string_agg(member::text || ':' || is_convergence, ',' ORDER BY member::text) FROM pgtrickle.diamond_groups()"),
	'b:false,c:false,d:true', 'diamond_groups() shows b, c and d, converging at d');

my $dml = $node->background_psql('postgres', on_error_stop => 0);
$dml->query_until(qr/dml started/, "\\echo dml started\nCALL diamond_dml(12);\n");
my $d_since = later(0);
my ($samples, $bad, $distinct) = (0, 0, 0);
my %seen;
my $t0 = time;
while (time - $t0 < 10)
{
	my $r = sql('SELECT n, bad FROM d');
	my ($n, $b) = split /\|/, $r;
	$samples++;
	$bad++ if $b != 0;
	$seen{$n} = 1;
	select(undef, undef, undef, 0.03);
}
cmp_ok($samples, '>=', 50, "d sampled $samples times under concurrent DML");
is($bad, 0, 'atomic: d never saw b and c from different moments');
cmp_ok(scalar(keys %seen), '>=', 3, 'd changed while it was sampled (' . scalar(keys %seen) . ' row counts)');
cmp_ok(min_refreshes($d_since, "'b', 'c', 'd'"), '>=', 3, 'b, c and d refreshed during the DML');

sql("SELECT pgtrickle.alter_stream_table('d', diamond_consistency => 'none')");
is(sql('SELECT count(*) FROM pgtrickle.diamond_groups()'), '0', "no diamond group with diamond_consistency 'none'");
sql('UPDATE a SET v = v + 1 WHERE id <= 10');
wait_ok('SELECT bad > 0 FROM d', 't', 30, "'none': d sees b newer than c (c's schedule is an hour)");
sql("SELECT pgtrickle.alter_stream_table('d', diamond_consistency => 'atomic')");
$dml->quit;
wait_ok('SELECT bad = 0 AND n = (SELECT count(*) FROM a) FROM d', 't', 30, 'atomic again: d converges');
is(sql("SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE status = 'FAILED'"), '0', 'no diamond refresh failed');

# a failing member rolls the whole group back
sql(q{
CREATE TABLE a2 (id int PRIMARY KEY, v int);
INSERT INTO a2 SELECT g, g FROM generate_series(1, 100) g;
SELECT pgtrickle.create_stream_table('e', 'SELECT id, v FROM a2', '1s', 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('f', 'SELECT id, 100 / v AS x FROM a2', '1s', 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('g', 'SELECT count(*) AS n FROM e JOIN f ON e.id = f.id', '1s', 'DIFFERENTIAL');
INSERT INTO a2 VALUES (1000, 0);
});
wait_ok("SELECT count(*) >= 2 FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
	  . "WHERE s.pgt_name = 'f' AND h.status = 'FAILED' AND h.error_message LIKE '%division by zero%'",
	't', 30, 'the failing member is recorded as FAILED');
is(sql('SELECT count(*) FROM e WHERE id = 1000'), '0', 'the other member was rolled back with it');
cmp_ok(sql("SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
		  . "WHERE s.pgt_name IN ('e', 'g') AND h.status = 'SKIPPED' AND h.error_message LIKE 'rolled back with its diamond group%'"),
	'>=', 2, 'the other members have SKIPPED history rows');
sql('UPDATE a2 SET v = 5 WHERE id = 1000');
wait_ok("SELECT (SELECT n FROM g) = 101 AND (SELECT count(*) FROM e) = 101 AND (SELECT x FROM f WHERE id = 1000) = 20",
	't', 30, 'after the fix the group catches up');
for my $st (qw(g f e d c b)) { sql("SELECT pgtrickle.drop_stream_table('$st')"); }

# ------------------------------------------------------------------ auto_backoff

sub gaps
{
	my ($since) = @_;
	return sql(qq{
SELECT string_agg(round(extract(epoch FROM gap)::numeric, 1)::text, ' ' ORDER BY start_time)
  FROM (SELECT start_time, start_time - lag(start_time) OVER (ORDER BY start_time) AS gap
          FROM pgtrickle.pgt_refresh_history WHERE initiated_by = 'SCHEDULER' AND start_time > '$since') x
 WHERE gap IS NOT NULL});
}
sql(q{SELECT pgtrickle.create_stream_table('slow', 'SELECT count(*) AS n FROM src CROSS JOIN (SELECT pg_sleep(1.2)) z', '1s', 'FULL')});
$since = later(3);
wait_ok("SELECT count(*) >= 4 FROM pgtrickle.pgt_refresh_history WHERE initiated_by = 'SCHEDULER' AND start_time > '$since'",
	't', 60, 'auto_backoff on: refreshing');
my @on = split / /, gaps($since);
ok((grep { $_ >= 1.9 } @on) == @on, "auto_backoff on: refreshes about 2 intervals apart (gaps: @on)");

set_guc('pg_trickle.auto_backoff', 'off');
$since = later(3);
wait_ok("SELECT count(*) >= 4 FROM pgtrickle.pgt_refresh_history WHERE initiated_by = 'SCHEDULER' AND start_time > '$since'",
	't', 60, 'auto_backoff off: refreshing');
my @off = split / /, gaps($since);
ok((grep { $_ < 1.7 } @off) == @off, "auto_backoff off: back to back (gaps: @off)");

$node->stop;
done_testing();
