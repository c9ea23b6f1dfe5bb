# Copyright (c) pg_trickle contributors
#
# 050_immediate_concurrency.pl — IMMEDIATE stream tables under concurrent
# multi-statement writers (issue 12, item 8): pgbench with 4 clients for a
# few seconds, then every stream table must equal its query (EXCEPT ALL
# both ways) and no transaction may have failed (no deadlock, no
# serialization failure: READ COMMITTED).
#
# Sources acct (grp = id % 50), item (bucket = acct_id % 20) and cat.
# Stream tables: g_acct and g_half (grouped aggregates over acct, sharing
# it; group-locked), g_item (grouped over item), j (item joined to cat,
# grouped: locked whole), and in the last run top (IMMEDIATE over g_acct
# and cat: maintained from g_acct's changes, in the same statement).
# Each transaction writes each source in one statement.  Script a writes
# acct then item, script b item then acct: opposite statement orders
# (while only j is locked whole), over groups of g_acct/g_half/g_item that
# the two scripts never share (the same group in opposite orders would
# deadlock on the stream tables' rows themselves, as with any
# trigger-maintained summary table: docs/SQL_REFERENCE.md, IMMEDIATE mode,
# says what is guaranteed).  Script an
# runs ANALYZE (a relcache invalidation for every writer's cached plans),
# script big updates 650 rows of acct in one statement (locks g_acct
# whole).  With top, every transaction writes acct first (script c
# replaces b).  The TPS with and without stream tables is printed for the
# record.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PgtTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PgtTest::start_node('ivmconc', "max_connections = 20\n");
my $db = 'postgres';
sub sql { return PgtTest::sql($node, $db, @_); }

sql(q{
CREATE EXTENSION pg_trickle;
CREATE TABLE cat (grp int PRIMARY KEY, name text NOT NULL);
INSERT INTO cat SELECT g, 'c' || (g % 7) FROM generate_series(0, 49) g;
CREATE TABLE acct (id int PRIMARY KEY, grp int NOT NULL, bal int NOT NULL);
INSERT INTO acct SELECT i, i % 50, 1000 FROM generate_series(0, 1999) i;
CREATE TABLE item (id serial PRIMARY KEY, acct_id int NOT NULL, qty int NOT NULL);
INSERT INTO item (acct_id, qty) SELECT i % 2000, 1 FROM generate_series(0, 3999) i;
});

my $dir = PostgreSQL::Test::Utils::tempdir;
my %scripts = (
	# acct rows of groups 0..24, then item rows of buckets 0..9
	a => q{\set k random(0, 39)
\set g random(0, 24)
\set m random(0, 99)
\set b random(0, 9)
BEGIN;
UPDATE acct SET bal = bal + 1 WHERE id = :k * 50 + :g;
INSERT INTO item (acct_id, qty) VALUES (:m * 20 + :b, 1);
COMMIT;
},
	# item rows of buckets 10..19, then acct rows of groups 25..49
	b => q{\set k random(0, 39)
\set g random(25, 49)
\set m random(0, 99)
\set b random(10, 19)
BEGIN;
UPDATE item SET qty = qty + 1 WHERE acct_id = :m * 20 + :b;
UPDATE acct SET bal = bal + CASE WHEN id = :k * 50 + :g THEN -1 ELSE 2 END
 WHERE id IN (:k * 50 + :g, ((:k + 1) % 40) * 50 + :g);
COMMIT;
},
	# as b, in a's order (acct, then item), deleting
	c => q{\set k random(0, 39)
\set g random(25, 49)
\set m random(0, 99)
\set b random(10, 19)
BEGIN;
UPDATE acct SET bal = bal + CASE WHEN id = :k * 50 + :g THEN -1 ELSE 2 END
 WHERE id IN (:k * 50 + :g, ((:k + 1) % 40) * 50 + :g);
DELETE FROM item WHERE id = (SELECT min(id) FROM item WHERE acct_id = :m * 20 + :b);
COMMIT;
},
	an => q{ANALYZE acct;
ANALYZE item;
},
	# rows locked in id order: two of these must not deadlock by themselves
	# (after an ANALYZE one may scan the index and the other the heap)
	big => q{UPDATE acct SET bal = bal + 1
 WHERE id IN (SELECT id FROM acct WHERE grp < 25 AND id < 1300 ORDER BY id FOR UPDATE);
},
);
for my $s (keys %scripts)
{
	open(my $fh, '>', "$dir/$s.sql") or die;
	print $fh $scripts{$s};
	close $fh;
}

# run pgbench; returns (tps, failed transactions, output)
sub bench
{
	my ($secs, @files) = @_;
	my ($out, $err) = ('', '');
	my @cmd = ('pgbench', '-n', '-c', '4', '-j', '2', '-T', $secs,
		'-p', $node->port, '-h', $node->host,
		map { my ($f, $w) = split /\@/; ('-f', "$dir/$f.sql\@$w") } @files);
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	my ($tps) = $out =~ /tps = ([0-9.]+)/;
	my ($failed) = $out =~ /number of failed transactions: (\d+)/;
	my ($done) = $out =~ /number of transactions actually processed: (\d+)/;
	return ($tps // 0, $failed // -1, $done // 0, "$out\n$err");
}

my %queries = (
	g_acct => 'SELECT grp, count(*) AS n, sum(bal) AS total, max(bal) AS hi FROM acct GROUP BY grp',
	g_half => 'SELECT grp / 25 AS half, count(*) AS n, min(bal) AS lo, sum(bal) AS total FROM acct GROUP BY grp / 25',
	g_item => 'SELECT acct_id % 20 AS bucket, count(*) AS n, sum(qty) AS q FROM item GROUP BY acct_id % 20',
	j => 'SELECT c.name, count(*) AS n, sum(i.qty) AS q FROM item i JOIN cat c ON c.grp = i.acct_id % 50 GROUP BY c.name',
	top => 'SELECT g.grp, g.total, c.name FROM g_acct g JOIN cat c USING (grp)',
);
my %cols = (
	g_acct => 'grp, n, total, hi',
	g_half => 'half, n, lo, total',
	g_item => 'bucket, n, q',
	j => 'name, n, q',
	top => 'grp, total, name',
);

sub check_exact
{
	my ($label, @sts) = @_;
	for my $st (@sts)
	{
		is(sql(PgtTest::diff_sql($st, $cols{$st}, $queries{$st})), '0 0',
			"$label: $st equals its query");
	}
}

my @mix = ('a@4', 'b@4', 'an@1', 'big@1');

# without stream tables: the writers' own rate
my ($tps0, $failed0, $done0, $out0) = bench(5, @mix);
is($failed0, 0, 'without stream tables: no failed transaction') or diag $out0;

for my $st (qw(g_acct g_half g_item j))
{
	sql("SELECT pgtrickle.create_stream_table(name => '$st', query => '$queries{$st}', refresh_mode => 'IMMEDIATE')");
}
my ($tps1, $failed1, $done1, $out1) = bench(8, @mix);
ok($done1 > 0, "IMMEDIATE: transactions ran ($done1)") or diag $out1;
is($failed1, 0, 'IMMEDIATE: no failed transaction (no deadlock, no serialization error)')
  or diag $out1;
check_exact('IMMEDIATE', qw(g_acct g_half g_item j));

# A chain: top is maintained from g_acct's changes inside the same
# statement, under its whole lock, so every writer of acct takes it; j's
# whole lock is taken by every writer of item.  Two stream tables locked
# whole and written in opposite statement orders deadlock (documented), so
# here every transaction writes acct first.
sql("SELECT pgtrickle.create_stream_table(name => 'top', query => '$queries{top}', refresh_mode => 'IMMEDIATE')");
my ($tps2, $failed2, $done2, $out2) = bench(5, 'a@4', 'c@4', 'an@1', 'big@1');
ok($done2 > 0, "IMMEDIATE with a chain: transactions ran ($done2)") or diag $out2;
is($failed2, 0, 'IMMEDIATE with a chain: no failed transaction') or diag $out2;
check_exact('IMMEDIATE with a chain', qw(g_acct g_half g_item j top));

diag sprintf('TPS, 4 clients: %.0f without stream tables, %.0f with 4 IMMEDIATE stream tables, %.0f with 5 (a chain)',
	$tps0, $tps1, $tps2);

$node->stop;
done_testing();
