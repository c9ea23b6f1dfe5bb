# Copyright (c) pg_trickle contributors
#
# 023_scheduler_oracle.pl — the correctness oracle with the scheduler doing
# every refresh.
#
# A dozen stream tables of a handful of shapes (filter, inner join,
# aggregate, left join, aggregate over a join, DISTINCT, a stream table
# reading a stream table) in several refresh modes and schedules ('1s',
# '2s', cron, 'calculated') read the same two tables.  Each round applies
# seeded random DML (INSERT, UPDATE of values, join keys and primary keys,
# DELETE, the odd TRUNCATE, several statements per transaction, some rolled
# back) and then polls, without ever calling refresh_stream_table(), until
# every stream table equals its defining query as a multiset (EXCEPT ALL
# both ways empty).  A stream table that does not converge within the
# timeout fails the round; the DML of the round and the differing rows are
# printed.
#
# Environment (optional): SCHED_ORACLE_SEED (default 1), SCHED_ORACLE_ROUNDS
# (default 8), SCHED_ORACLE_TIMEOUT seconds per round (default 30).

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PgtTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $SEED = $ENV{SCHED_ORACLE_SEED} || 1;
my $ROUNDS = $ENV{SCHED_ORACLE_ROUNDS} || 8;
my $TIMEOUT = $ENV{SCHED_ORACLE_TIMEOUT} || 30;
srand($SEED);

my $node = PgtTest::start_node('schedoracle', "log_lock_waits = on\nlog_statement = none\n");

sub sql { return PgtTest::sql($node, 'postgres', $_[0]); }
sub diff_sql { return PgtTest::diff_sql(@_); }

sql(q{
CREATE EXTENSION pg_trickle;
CREATE TABLE customers (id int PRIMARY KEY, name text, region text);
CREATE TABLE orders (id int PRIMARY KEY, cust_id int, amount numeric(10,2), status text);
INSERT INTO customers SELECT i, (ARRAY['ann', 'bob', 'cyd', 'dee', NULL])[1 + i % 5], (ARRAY['N', 'S', 'E', NULL])[1 + i % 4]
  FROM generate_series(1, 12) i;
INSERT INTO orders SELECT i, CASE WHEN i % 9 = 0 THEN NULL ELSE 1 + i % 14 END, (i * 37 % 200) / 2.0,
       (ARRAY['open', 'shipped', 'closed'])[1 + i % 3]
  FROM generate_series(1, 40) i;
});

# name, query, mode, schedule
my @ST = (
	[ 'o_filter', "SELECT id, cust_id, amount FROM orders WHERE amount > 50 AND status <> 'closed'", 'DIFFERENTIAL', '1s' ],
	[ 'o_join', 'SELECT o.id, o.amount, c.name, c.region FROM orders o JOIN customers c ON c.id = o.cust_id', 'DIFFERENTIAL', '1s' ],
	[ 'o_join_full', 'SELECT o.id, o.amount, c.name, c.region FROM orders o JOIN customers c ON c.id = o.cust_id', 'FULL', '2s' ],
	[ 'o_join_auto', 'SELECT o.id, o.amount, c.name, c.region FROM orders o JOIN customers c ON c.id = o.cust_id', 'AUTO', '* * * * * *' ],
	[ 'o_agg', 'SELECT cust_id, count(*) AS n, sum(amount) AS s, avg(amount) AS av, min(amount) AS mn, max(amount) AS mx FROM orders GROUP BY cust_id', 'DIFFERENTIAL', '1s' ],
	[ 'o_agg_global', 'SELECT count(*) AS n, sum(amount) AS s FROM orders', 'DIFFERENTIAL', 'calculated' ],
	[ 'o_left', 'SELECT c.id AS cid, c.name, o.id AS oid, o.amount FROM customers c LEFT JOIN orders o ON o.cust_id = c.id', 'DIFFERENTIAL', '1s' ],
	[ 'o_left_cron', "SELECT c.id AS cid, c.region, o.id AS oid FROM customers c LEFT JOIN orders o ON o.cust_id = c.id AND o.status = 'open'", 'DIFFERENTIAL', '* * * * * *' ],
	[ 'o_region', 'SELECT c.region, count(*) AS n, sum(o.amount) AS s FROM orders o JOIN customers c ON c.id = o.cust_id GROUP BY c.region', 'DIFFERENTIAL', 'calculated' ],
	[ 'o_region_big', 'SELECT region, n, s FROM o_region WHERE n >= 3', 'DIFFERENTIAL', '1s' ],
	[ 'o_distinct', 'SELECT DISTINCT status, cust_id FROM orders', 'DIFFERENTIAL', '2s' ],
	[ 'o_semi', "SELECT c.id, c.name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.cust_id = c.id AND o.status = 'open')", 'AUTO', '1s' ],
);

my %cols;
for my $st (@ST)
{
	my ($name, $q, $mode, $sched) = @$st;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT pgtrickle.create_stream_table('$name', \$q\$$q\$q\$, schedule => '$sched', refresh_mode => '$mode')");
	ok($ret == 0, "create $name ($mode, '$sched')") or diag $err;
	$cols{$name} = sql("SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
		  . "WHERE attrelid = '$name'::regclass AND attnum > 0 AND NOT attisdropped AND left(attname, 6) <> '__pgt_'")
	  if $ret == 0;
}
my @live = grep { $cols{ $_->[0] } } @ST;

# ------------------------------------------------------------ random DML

sub pick { return $_[ int(rand(@_)) ]; }
sub maybe_null { my ($p, $v) = @_; return rand() < $p ? 'NULL' : $v; }
sub amount { return sprintf('%.2f', int(rand(400)) / 4); }
sub qs { return "'" . $_[0] . "'"; }

sub stmt
{
	my $r = rand();
	my $oid = 1 + int(rand(60));
	my $cid = 1 + int(rand(16));
	return 'INSERT INTO orders VALUES (' . join(', ', $oid, maybe_null(0.1, 1 + int(rand(16))), maybe_null(0.1, amount()),
		qs(pick(qw(open shipped closed)))) . ') ON CONFLICT DO NOTHING' if $r < 0.25;
	return 'UPDATE orders SET amount = ' . maybe_null(0.05, amount()) . " WHERE id % 5 = " . int(rand(5)) if $r < 0.35;
	return 'UPDATE orders SET cust_id = ' . maybe_null(0.1, $cid) . " WHERE id = $oid" if $r < 0.45;
	return "UPDATE orders SET status = " . qs(pick(qw(open shipped closed))) . " WHERE id % 4 = " . int(rand(4)) if $r < 0.52;
	return "UPDATE orders SET id = id + 100 WHERE id = $oid AND NOT EXISTS (SELECT 1 FROM orders x WHERE x.id = $oid + 100)" if $r < 0.56;
	return "DELETE FROM orders WHERE id % 7 = " . int(rand(7)) . " AND amount < " . amount() if $r < 0.66;
	return "INSERT INTO customers VALUES ($cid, " . maybe_null(0.2, qs(pick(qw(ann bob cyd dee eve)))) . ', '
	  . maybe_null(0.2, qs(pick(qw(N S E W)))) . ') ON CONFLICT DO NOTHING' if $r < 0.74;
	return 'UPDATE customers SET region = ' . maybe_null(0.2, qs(pick(qw(N S E W)))) . " WHERE id = $cid" if $r < 0.82;
	return 'UPDATE customers SET name = ' . maybe_null(0.2, qs(pick(qw(ann bob cyd dee eve)))) . " WHERE id % 3 = " . int(rand(3)) if $r < 0.86;
	return "DELETE FROM customers WHERE id = $cid" if $r < 0.92;
	return "UPDATE customers SET id = id + 20 WHERE id = $cid AND NOT EXISTS (SELECT 1 FROM customers x WHERE x.id = $cid + 20)" if $r < 0.96;
	return pick('TRUNCATE orders', 'DELETE FROM orders WHERE id > 30') if $r < 0.975;
	return 'UPDATE orders SET amount = amount + 1';
}

sub round_sql
{
	my @out;
	for (1 .. 1 + int(rand(4)))
	{
		my @s = map { stmt() . ';' } 1 .. 1 + int(rand(5));
		push @out, 'BEGIN;', @s, (rand() < 0.1 ? 'ROLLBACK;' : 'COMMIT;');
	}
	# keep the tables from draining
	push @out, 'INSERT INTO orders SELECT g, 1 + g % 16, (g % 90) + 0.5, \'open\' FROM generate_series(1, 60) g '
	  . 'WHERE (SELECT count(*) FROM orders) < 15 ON CONFLICT DO NOTHING;';
	return join("\n", @out) . "\n";
}

# ------------------------------------------------------------ rounds

sub converge
{
	my ($label, $dml) = @_;
	my $t0 = time;
	my %pending = map { $_->[0] => $_ } @live;
	my %last;
	while (%pending && time - $t0 < $TIMEOUT)
	{
		for my $name (sort keys %pending)
		{
			my ($n, $q) = @{ $pending{$name} };
			my ($ret, $out, $err) = $node->psql('postgres', diff_sql($n, $cols{$n}, $q));
			$last{$name} = ($out // '') . ($err ? " $err" : '');
			delete $pending{$name} if $ret == 0 && $out eq '0 0';
		}
		usleep(100_000) if %pending;
	}
	my $secs = time - $t0;
	for my $st (@live)
	{
		my ($n, $q) = @$st;
		next unless exists $pending{$n};
		my $rows = sql("SELECT 'stream table only: ' || d::text FROM (SELECT $cols{$n} FROM $n EXCEPT ALL SELECT * FROM ($q) q LIMIT 10) d;\n"
			  . "SELECT 'query only:        ' || d::text FROM (SELECT * FROM ($q) q EXCEPT ALL SELECT $cols{$n} FROM $n LIMIT 10) d;");
		my $state = sql("SELECT status || ' errors=' || consecutive_errors || ' ' || coalesce(last_error_message, '') FROM pgtrickle.pgt_stream_tables WHERE pgt_name = '$n'");
		diag "$label: $n did not converge in ${TIMEOUT}s (last: $last{$n}; $state)\nquery: $q\nDML:\n$dml$rows";
	}
	ok(!%pending, sprintf('%s: all %d stream tables equal their queries (%.1fs)', $label, scalar @live, $secs))
	  or diag 'not converged: ' . join(', ', sort keys %pending);
	return $secs;
}

converge('after creation', '');
my @times;
for my $round (1 .. $ROUNDS)
{
	my $dml = round_sql();
	my ($ret, $out, $err) = $node->psql('postgres', $dml, on_error_stop => 0);
	diag "round $round: DML error (test bug?): $err" if $err =~ /ERROR/;
	push @times, converge("seed $SEED round $round", $dml);
}
@times = sort { $a <=> $b } @times;
note sprintf('convergence: median %.2fs, max %.2fs', $times[ $#times / 2 ], $times[-1]) if @times;

is(sql("SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE initiated_by = 'MANUAL'"), '0', 'no manual refresh happened');
is(sql("SELECT string_agg(pgt_name, ',') FROM pgtrickle.pgt_stream_tables WHERE status <> 'ACTIVE' OR consecutive_errors <> 0"), '',
	'every stream table ACTIVE, no errors');
is(sql("SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE status = 'FAILED'"), '0', 'no failed refresh');

$node->stop;
done_testing();
