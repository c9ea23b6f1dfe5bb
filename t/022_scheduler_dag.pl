# Copyright (c) pg_trickle contributors
#
# 022_scheduler_dag.pl — the scheduler refreshes stream tables that read
# stream tables upstream first, and keeps chains and diamonds exact.
#
#   chain a -> b -> c (b reads a, c reads b).  The three are created so that
#     their pgt_id order is the reverse of the dependency order (c and b
#     start as placeholders over the source and get their real queries from
#     alter_stream_table), so a scheduler that refreshed by pgt_id would be
#     caught.  a and b are 'calculated', c is '1s'.
#   diamond A -> B, A -> C, B + C -> D (D created first, same trick).
#
# For each DAG:
#   - single changes: with every member quiet (no history row for 1.5 s),
#     one committed change must propagate in ONE pass: the history
#     rows written after it are exactly one COMPLETED DIFFERENTIAL
#     SCHEDULER row per member, upstream before downstream by refresh_id,
#     each starting after its upstreams' rows ended, all within a second.
#   - latency: a change 1.1 s after the previous one reaches the end of
#     the chain at once (median of 5 under 0.3 s).
#   - concurrent DML: two clients change the source at the same time while
#     the scheduler runs; once they stop, every member equals its defining
#     query and the composition of the queries over the source (EXCEPT ALL
#     both ways).
# Also: a '3s' reader of a '1s' stream table catches up on its own schedule.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PgtTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

# ------------------------------------------------------------------ helpers

my $node = PgtTest::start_node('scheddag', "log_lock_waits = on\n");

sub sql { return PgtTest::sql($node, 'postgres', @_); }
sub poll_until { return PgtTest::poll_until($node, 'postgres', @_); }

sub wait_ok
{
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return PgtTest::wait_ok($node, 'postgres', @_);
}
sub diff_sql { return PgtTest::diff_sql(@_); }

# quiet: no member wrote a history row for 1.5 s, so the passes that
# followed the previous change (which see the scheduler's own commits to
# the upstream stream tables and find nothing more to do) are over, and
# every member is due again by the time the next change arrives
sub wait_idle
{
	my ($names) = @_;
	my $in = join(', ', map { "'$_'" } @$names);
	my ($ok, $secs, $out) = poll_until(
		"SELECT coalesce(pg_catalog.clock_timestamp() - max(h.end_time) > interval '1.5 s', true) FROM pgtrickle.pgt_refresh_history h "
		  . "JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) WHERE s.pgt_name IN ($in)",
		't', 30);
	diag "members never quiet: $out" unless $ok;
}

sub max_refresh_id
{
	return sql('SELECT coalesce(max(refresh_id), 0) FROM pgtrickle.pgt_refresh_history');
}

# history rows after refresh id $r0 of the named stream tables:
# [name, action, status, initiated_by, start_epoch, end_epoch], by refresh_id
sub rows_after
{
	my ($r0, $names) = @_;
	my $in = join(', ', map { "'$_'" } @$names);
	my $out = sql("SELECT s.pgt_name, h.action, h.status, h.initiated_by, extract(epoch FROM h.start_time), extract(epoch FROM h.end_time) "
		  . "FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) "
		  . "WHERE h.refresh_id > $r0 AND s.pgt_name IN ($in) ORDER BY h.refresh_id");
	return [ map { [ split /\|/ ] } grep { $_ ne '' } split /\n/, $out ];
}

# check_one_pass(label, rows, [[name, [upstream names]], ...] in a valid order)
sub check_one_pass
{
	my ($label, $rows, $members) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $desc = join(' ', map { "$_->[0]:$_->[1]:$_->[2]" } @$rows);
	my @problems;
	push @problems, 'expected ' . scalar(@$members) . ' rows, got ' . scalar(@$rows) if @$rows != @$members;
	my %pos;
	for my $i (0 .. $#$rows)
	{
		my $r = $rows->[$i];
		push @problems, "$r->[0] refreshed twice" if exists $pos{ $r->[0] };
		$pos{ $r->[0] } = $i;
		push @problems, "$r->[0] is $r->[1]/$r->[2]/$r->[3]"
		  unless $r->[1] eq 'DIFFERENTIAL' && $r->[2] eq 'COMPLETED' && $r->[3] eq 'SCHEDULER';
	}
	for my $m (@$members)
	{
		my ($name, $ups) = @$m;
		if (!exists $pos{$name})
		{
			push @problems, "$name not refreshed";
			next;
		}
		for my $u (@$ups)
		{
			next unless exists $pos{$u};
			my ($ru, $rn) = ($rows->[ $pos{$u} ], $rows->[ $pos{$name} ]);
			push @problems, "$name (row " . ($pos{$name} + 1) . ") before its upstream $u (row " . ($pos{$u} + 1) . ')'
			  if $pos{$name} < $pos{$u};
			push @problems, sprintf('%s started %.3fs before %s ended', $name, $ru->[5] - $rn->[4], $u)
			  if $rn->[4] < $ru->[5];
		}
	}
	if (@$rows == @$members && @$rows)
	{
		my $span = $rows->[-1][5] - $rows->[0][4];
		push @problems, sprintf('spread over %.2fs: more than one pass', $span) if $span > 1.0;
	}
	ok(!@problems, "$label: one pass, upstream first") or diag "history after the change: $desc\nproblems: " . join('; ', @problems);
}

sql('CREATE EXTENSION pg_trickle');
wait_ok("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = 'postgres'", '1', 30,
	'scheduler running');

# Concurrent writers: a procedure that commits each change.
sql(q{
CREATE PROCEDURE churn(tbl text, n int, nkeys int, ngroups int) LANGUAGE plpgsql AS $$
DECLARE
    r float8;
    k int;
BEGIN
    FOR i IN 1 .. n LOOP
        r := random();
        k := 1 + floor(random() * nkeys)::int;
        IF r < 0.35 THEN
            EXECUTE format('INSERT INTO %I VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v', tbl)
                USING k, floor(random() * ngroups)::int, floor(random() * 21)::int - 5;
        ELSIF r < 0.6 THEN
            EXECUTE format('UPDATE %I SET v = v + $2 WHERE id = $1', tbl) USING k, floor(random() * 7)::int - 3;
        ELSIF r < 0.75 THEN
            EXECUTE format('UPDATE %I SET g = $2 WHERE id = $1', tbl) USING k, floor(random() * ngroups)::int;
        ELSIF r < 0.9 THEN
            EXECUTE format('DELETE FROM %I WHERE id = $1', tbl) USING k;
        ELSE
            EXECUTE format('UPDATE %I SET v = v + 1 WHERE id %% 7 = $1', tbl) USING k % 7;
        END IF;
        COMMIT;
        PERFORM pg_sleep(0.003);
    END LOOP;
END $$;
});

sub concurrent_churn
{
	my ($tbl, $n, $nkeys, $ngroups) = @_;
	my @s = map { $node->background_psql('postgres', on_error_stop => 1) } 1 .. 2;
	$_->query_until(qr/churn started/, "\\echo churn started\nCALL churn('$tbl', $n, $nkeys, $ngroups);\n\\echo churn finished\n") for @s;
	for my $s (@s)
	{
		$s->query_until(qr/churn finished/, '');
		$s->quit;
	}
}

# ------------------------------------------------------------------ chain

sql(q{
CREATE TABLE src (id int PRIMARY KEY, g int, v int);
INSERT INTO src SELECT i, i % 10, (i * 7) % 15 - 3 FROM generate_series(1, 200) i;
SELECT pgtrickle.create_stream_table('c', 'SELECT id, g, v FROM src', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('b', 'SELECT id, g, v FROM src', schedule => 'calculated', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('a', 'SELECT id, g, v FROM src WHERE v > 0', schedule => 'calculated', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.alter_stream_table('b', query => 'SELECT g, count(*) AS n, sum(v) AS s FROM a GROUP BY g');
SELECT pgtrickle.alter_stream_table('c', query => 'SELECT g, n, s FROM b WHERE n >= 3');
});
is(sql("SELECT string_agg(pgt_name, ',' ORDER BY pgt_id) FROM pgtrickle.pgt_stream_tables WHERE pgt_name IN ('a', 'b', 'c')"),
	'c,b,a', 'chain: pgt_id order is the reverse of the dependency order');
is(sql("SELECT string_agg(stream_table::text || '<-' || source::text, ',' ORDER BY stream_table::text) FROM pgtrickle.dependency_tree() WHERE depth = 1 AND stream_table::text IN ('a', 'b', 'c')"),
	'a<-src,b<-a,c<-b', 'chain: dependencies a <- src, b <- a, c <- b');

my $qa = 'SELECT id, g, v FROM src WHERE v > 0';
my $qb_full = "SELECT g, count(*) AS n, sum(v) AS s FROM ($qa) a GROUP BY g";
my $qc_full = "SELECT g, n, s FROM ($qb_full) b WHERE n >= 3";
my @chain = ([ 'a', [] ], [ 'b', ['a'] ], [ 'c', ['b'] ]);

sub chain_exact
{
	my ($label, $timeout) = @_;
	wait_ok(diff_sql('c', 'g, n, s', $qc_full), '0 0', $timeout, "$label: c equals the composed query over src");
	is(poll_text(diff_sql('a', 'id, g, v', $qa)), '0 0', "$label: a equals its query");
	is(poll_text(diff_sql('b', 'g, n, s', 'SELECT g, count(*) AS n, sum(v) AS s FROM a GROUP BY g')), '0 0', "$label: b equals its query over a");
	is(poll_text(diff_sql('b', 'g, n, s', $qb_full)), '0 0', "$label: b equals the composed query over src");
	is(poll_text(diff_sql('c', 'g, n, s', 'SELECT g, n, s FROM b WHERE n >= 3')), '0 0', "$label: c equals its query over b");
}

sub poll_text { return sql($_[0]); }

chain_exact('chain after creation', 30);

my @changes = (
	'UPDATE src SET v = v + 2 WHERE id = 11',
	'INSERT INTO src VALUES (1001, 3, 9)',
	'DELETE FROM src WHERE id = 23',
	'UPDATE src SET g = 5 WHERE id = 34',
	'UPDATE src SET v = 40 WHERE id IN (45, 46)',
);
for my $i (0 .. $#changes)
{
	wait_idle([qw(a b c)]);
	my $r0 = max_refresh_id();
	sql($changes[$i]);
	wait_ok(diff_sql('c', 'g, n, s', $qc_full), '0 0', 30, "chain change " . ($i + 1) . ": c caught up");
	# rows of this change's pass are committed by the time c is
	check_one_pass("chain change " . ($i + 1) . " ($changes[$i])", rows_after($r0, [qw(a b c)]), \@chain);
}

my $t0 = time;
concurrent_churn('src', 300, 250, 10);
note sprintf('chain: concurrent DML took %.1fs', time - $t0);
ok(sql("SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) WHERE s.pgt_name = 'c' AND h.initiated_by = 'SCHEDULER' AND h.action = 'DIFFERENTIAL'") > scalar(@changes),
	'chain: c was refreshed while the clients ran');
chain_exact('chain after concurrent DML', 30);
is(sql("SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) WHERE s.pgt_name IN ('a', 'b', 'c') AND h.status <> 'COMPLETED'"),
	'0', 'chain: no failed refresh');

# Woken at commit, through the chain: a change a little over a second
# after the previous one (every member due again) must reach c in one
# pass, not wait for another interval.
{
	# every change moves a, b and c (group 1 has more than 3 rows)
	sql('INSERT INTO src VALUES (5000, 1, 1) ON CONFLICT (id) DO UPDATE SET g = 1, v = 1');
	wait_ok(diff_sql('c', 'g, n, s', $qc_full), '0 0', 30, 'chain: caught up before the latency samples');
	my @lat;
	for my $i (1 .. 5)
	{
		usleep(1_100_000);    # the precondition: members due again, not an assertion
		sql('UPDATE src SET v = v + 1 WHERE id = 5000');
		my ($ok, $s) = poll_until(diff_sql('c', 'g, n, s', $qc_full), '0 0', 10);
		push @lat, $ok ? $s : 99;
	}
	my @sorted = sort { $a <=> $b } @lat;
	ok($sorted[2] < 0.3, sprintf('chain: a change 1.1 s after the previous one reaches c within 0.3 s (median of 5: %.3fs)', $sorted[2]))
	  or diag 'latencies: ' . join(' ', map { sprintf('%.3f', $_) } @lat);
}

# ------------------------------------------------------------------ diamond

sql(q{
CREATE TABLE dsrc (id int PRIMARY KEY, g int, v int);
INSERT INTO dsrc SELECT i, i % 6, (i * 5) % 23 FROM generate_series(1, 150) i;
SELECT pgtrickle.create_stream_table('dd', 'SELECT id, g, v FROM dsrc', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('da', 'SELECT id, g, v FROM dsrc', schedule => 'calculated', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('db', 'SELECT g, sum(v) AS sv FROM da GROUP BY g', schedule => 'calculated', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('dc', 'SELECT g, count(*) AS n FROM da WHERE v > 10 GROUP BY g', schedule => 'calculated', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.alter_stream_table('dd', query => 'SELECT x.g, x.sv, y.n FROM db x JOIN dc y ON y.g = x.g');
});
is(sql("SELECT string_agg(pgt_name, ',' ORDER BY pgt_id) FROM pgtrickle.pgt_stream_tables WHERE pgt_name LIKE 'd_'"),
	'dd,da,db,dc', 'diamond: the sink has the lowest pgt_id');

my $qda = 'SELECT id, g, v FROM dsrc';
my $qdb = 'SELECT g, sum(v) AS sv FROM dsrc GROUP BY g';
my $qdc = 'SELECT g, count(*) AS n FROM dsrc WHERE v > 10 GROUP BY g';
my $qdd = "SELECT x.g, x.sv, y.n FROM ($qdb) x JOIN ($qdc) y ON y.g = x.g";
my @diamond = ([ 'da', [] ], [ 'db', ['da'] ], [ 'dc', ['da'] ], [ 'dd', [ 'db', 'dc' ] ]);

sub diamond_exact
{
	my ($label, $timeout) = @_;
	wait_ok(diff_sql('dd', 'g, sv, n', $qdd), '0 0', $timeout, "$label: D equals the composed query over the source");
	is(sql(diff_sql('da', 'id, g, v', $qda)), '0 0', "$label: A equals its query");
	is(sql(diff_sql('db', 'g, sv', $qdb)), '0 0', "$label: B equals its query");
	is(sql(diff_sql('dc', 'g, n', $qdc)), '0 0', "$label: C equals its query");
	is(sql(diff_sql('dd', 'g, sv, n', 'SELECT x.g, x.sv, y.n FROM db x JOIN dc y ON y.g = x.g')), '0 0', "$label: D equals its query over B and C");
}

diamond_exact('diamond after creation', 30);

# each change moves both B (sum) and C (count of v > 10)
my @dchanges = (
	'UPDATE dsrc SET v = 20 WHERE id = 12',
	'INSERT INTO dsrc VALUES (1001, 2, 15)',
	'DELETE FROM dsrc WHERE id = (SELECT min(id) FROM dsrc WHERE v > 10 AND g = 3)',
	'UPDATE dsrc SET g = 4 WHERE id = (SELECT min(id) FROM dsrc WHERE v > 10 AND g = 1)',
);
for my $i (0 .. $#dchanges)
{
	wait_idle([qw(da db dc dd)]);
	my $r0 = max_refresh_id();
	sql($dchanges[$i]);
	wait_ok(diff_sql('dd', 'g, sv, n', $qdd), '0 0', 30, "diamond change " . ($i + 1) . ": D caught up");
	check_one_pass("diamond change " . ($i + 1) . " ($dchanges[$i])", rows_after($r0, [qw(da db dc dd)]), \@diamond);
}

concurrent_churn('dsrc', 300, 200, 6);
diamond_exact('diamond after concurrent DML', 30);

# ------------------------------------------------------------------ slow reader

sql(q{
CREATE TABLE rsrc (id int PRIMARY KEY, v int);
SELECT pgtrickle.create_stream_table('r_up', 'SELECT id, v FROM rsrc', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('r_slow', 'SELECT count(*) AS n, sum(v) AS s FROM r_up', schedule => '3s', refresh_mode => 'DIFFERENTIAL');
});
wait_idle([qw(r_up r_slow)]);
sql('INSERT INTO rsrc VALUES (1, 10), (2, 20)');
wait_ok("SELECT count(*) FROM r_up", '2', 10, "'1s' upstream refreshed");
my $secs = wait_ok("SELECT n || ' ' || s FROM r_slow", '2 30', 15, "'3s' reader of a '1s' stream table catches up");
ok(defined $secs && $secs < 5, '... within its schedule') or diag 'took ' . ($secs // 'more than 15') . ' s';

$node->stop;
done_testing();
