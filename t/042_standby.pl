# Copyright (c) pg_trickle contributors
#
# 042_standby.pl — a hot standby (physical streaming replication).
#
#   The stream tables arrive on the standby with the primary's WAL, as fresh
#   as on the primary (after the standby replayed it).  On the standby every
#   function that would write (refresh, create, alter, drop, resume,
#   repair) fails cleanly with 25006 read_only_sql_transaction naming the
#   stream table and hinting at the primary; the read-only functions work;
#   health_check() and quick_health call it a read-only standby instead of
#   asking for shared_preload_libraries; neither the launcher nor a
#   scheduler runs there, and the standby's log has no error but those of
#   the refused calls.  After promotion the new primary's scheduler takes
#   over.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PgtTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $conf = q{
shared_preload_libraries = 'pg_trickle'
autovacuum = off
};

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;

$primary->safe_psql('postgres', q{
CREATE EXTENSION pg_trickle;
CREATE TABLE src (id int PRIMARY KEY, g int, v int);
INSERT INTO src SELECT i, i % 3, i FROM generate_series(1, 30) i;
SELECT pgtrickle.create_stream_table('st_diff',
    'SELECT g, count(*) AS n, sum(v) AS s FROM src GROUP BY g',
    schedule => '1h', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('st_imm',
    'SELECT g, max(v) AS m FROM src GROUP BY g',
    schedule => NULL, refresh_mode => 'IMMEDIATE');
});

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;

# changes on the primary: IMMEDIATE applies them at once, DIFFERENTIAL at
# the refresh; the standby receives both with the WAL
$primary->safe_psql('postgres', q{
INSERT INTO src SELECT i, i % 3, i FROM generate_series(31, 40) i;
DELETE FROM src WHERE id <= 5;
SELECT pgtrickle.refresh_stream_table('st_diff');
});
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
for my $st ('st_diff', 'st_imm')
{
	my $q = "SELECT * FROM $st ORDER BY 1";
	is($standby->safe_psql('postgres', $q), $primary->safe_psql('postgres', $q),
		"$st on the standby equals $st on the primary");
	my $def = $primary->safe_psql('postgres',
		"SELECT defining_query FROM pgtrickle.pgt_stream_tables WHERE pgt_name = '$st'");
	is($standby->safe_psql('postgres',
		PgtTest::diff_sql($st, $st eq 'st_diff' ? 'g, n, s' : 'g, m', $def)),
		'0 0', "$st on the standby holds its query's rows");
}

# every writing function: 25006, naming the stream table, hinting at the primary
my %calls = (
	refresh => "SELECT pgtrickle.refresh_stream_table('st_diff')",
	create => "SELECT pgtrickle.create_stream_table('st_new', 'SELECT id FROM src', schedule => '1h')",
	create_or_replace => "SELECT pgtrickle.create_or_replace_stream_table('st_diff', 'SELECT g FROM src', schedule => '1h')",
	create_if_not_exists => "SELECT pgtrickle.create_stream_table_if_not_exists('st_new', 'SELECT id FROM src')",
	alter => "SELECT pgtrickle.alter_stream_table('st_diff', schedule => '2h')",
	drop => "SELECT pgtrickle.drop_stream_table('st_imm')",
	resume => "SELECT pgtrickle.resume_stream_table('st_diff')",
	repair => "SELECT pgtrickle.repair_stream_table('st_diff')",
);
my $refused = 0;
for my $what (sort keys %calls)
{
	my ($rc, $out, $err) = $standby->psql('postgres', "\\set VERBOSITY verbose\n$calls{$what}");
	my ($st) = $calls{$what} =~ /\('(st_\w+)'/;
	like($err, qr/ERROR:  25006: cannot \w+ stream table "\Q$st\E" on a read-only standby/,
		"$what on the standby: 25006 naming $st");
	like($err, qr/HINT:  Run it on the primary/, "$what on the standby: hint at the primary");
	unlike($err, qr/XX000|internal/i, "$what on the standby: no internal error");
	$refused++;
}

# reading works
is($standby->safe_psql('postgres', q{
SELECT count(*) FROM pgtrickle.pgt_status();
SELECT pgtrickle.export_definition('st_diff') LIKE '%create_stream_table%';
SELECT pgtrickle.get_staleness('st_diff') >= 0;
SELECT count(*) > 0 FROM pgtrickle.explain_refresh_mode('st_diff');
SELECT count(*) FROM pgtrickle.change_buffer_sizes();
}), "2\nt\nt\nt\n1", 'the read-only functions work on the standby');

is($standby->safe_psql('postgres',
	"SELECT severity || ' ' || detail FROM pgtrickle.health_check() WHERE check_name = 'scheduler'"),
	'OK read-only standby: no scheduler runs here; stream tables are replicated from the primary and are as fresh as there',
	'health_check() calls it a read-only standby');
is($standby->safe_psql('postgres', 'SELECT scheduler_running, status FROM pgtrickle.quick_health'),
	'f|OK', 'quick_health: no scheduler, and no warning for it on a standby');
is($standby->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_trickle%'"),
	'0', 'no launcher or scheduler runs on the standby');

# the standby's log: errors only from the refused calls, each with its statement
my $log = slurp_file($standby->logfile);
my @errors = $log =~ /^.*(?:ERROR|FATAL|PANIC):.*$/mg;
is(scalar(@errors), $refused, 'the standby logged one error per refused call, and no other')
  or diag join("\n", @errors);
unlike($log, qr/background worker .* exited with exit code/, 'no background worker failed on the standby');

# promotion: the new primary's scheduler takes over
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()');
PgtTest::wait_ok($standby, 'postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler'", '1', 30,
	'after promotion a scheduler runs');
$standby->safe_psql('postgres', q{
INSERT INTO src VALUES (100, 1, 100);
SELECT pgtrickle.refresh_stream_table('st_diff');
});
is($standby->safe_psql('postgres', PgtTest::diff_sql('st_diff', 'g, n, s',
	'SELECT g, count(*) AS n, sum(v) AS s FROM src GROUP BY g')), '0 0',
	'after promotion refresh_stream_table works');
is($standby->safe_psql('postgres', PgtTest::diff_sql('st_imm', 'g, m',
	'SELECT g, max(v) AS m FROM src GROUP BY g')), '0 0',
	'after promotion IMMEDIATE maintenance works');

$standby->stop;
$primary->stop;
done_testing();
