# Copyright (c) pg_trickle contributors
#
# 024_scheduler_many_databases.pl — the launcher with many databases.
#
#   - With 64 other databases in the cluster (none of them using
#     pg_trickle), CREATE EXTENSION in one more database still gets that
#     database a scheduler.
#   - After those databases are dropped, a new database with pg_trickle
#     gets a scheduler: the launcher does not keep a slot for every database
#     it ever saw.
#   - The database that had pg_trickle all along keeps its scheduler and
#     keeps refreshing throughout.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $NDB = 64;

my $node = PostgreSQL::Test::Cluster->new('schedmany');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_trickle'
autovacuum = off
log_lock_waits = on
log_min_messages = warning
log_statement = none
fsync = off
});
$node->start;

sub sql
{
	my ($db, $q) = @_;
	return $node->safe_psql($db, $q);
}

sub wait_ok
{
	my ($db, $q, $expected, $timeout, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $t0 = time;
	my ($out, $err) = ('', '');
	while (1)
	{
		$node->psql($db, $q, stdout => \$out, stderr => \$err);
		$out //= '';
		if ($out eq $expected && ($err // '') eq '')
		{
			pass(sprintf('%s (%.2fs)', $name, time - $t0));
			return 1;
		}
		last if time - $t0 > $timeout;
		usleep(100_000);
	}
	fail($name);
	diag "waited ${timeout}s for\n  $q\nto return '$expected'; last output: '$out' $err";
	return 0;
}

sub n_schedulers
{
	my ($db) = @_;
	return "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = '$db'";
}

sql('postgres', q{
CREATE EXTENSION pg_trickle;
CREATE TABLE src (id int PRIMARY KEY);
SELECT pgtrickle.create_stream_table('st', 'SELECT id FROM src', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
});
wait_ok('postgres', n_schedulers('postgres'), '1', 30, 'scheduler in postgres');

my $t0 = time;
sql('postgres', join("\n", map { "CREATE DATABASE many_$_;" } 1 .. $NDB));
note sprintf('created %d databases in %.1fs', $NDB, time - $t0);

sql('postgres', 'CREATE DATABASE late');
sql('late', q{
CREATE EXTENSION pg_trickle;
CREATE TABLE src (id int PRIMARY KEY);
SELECT pgtrickle.create_stream_table('st', 'SELECT id FROM src', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
INSERT INTO src VALUES (1);
});
wait_ok('postgres', n_schedulers('late'), '1', 30, "with $NDB other databases, CREATE EXTENSION in one more starts its scheduler");
wait_ok('late', 'SELECT count(*) FROM st', '1', 15, '... and it refreshes');

sql('postgres', 'INSERT INTO src VALUES (1)');
wait_ok('postgres', 'SELECT count(*) FROM st', '1', 15, 'postgres keeps refreshing');

# WITH (FORCE): DROP DATABASE of a database with a scheduler is tested in
# 020_scheduler.pl; here only the launcher's bookkeeping matters.
sql('postgres', join("\n", map { "DROP DATABASE many_$_ WITH (FORCE);" } 1 .. $NDB));
sql('postgres', 'DROP DATABASE late WITH (FORCE)');
sql('postgres', 'CREATE DATABASE after_drop');
sql('after_drop', q{
CREATE EXTENSION pg_trickle;
CREATE TABLE src (id int PRIMARY KEY);
SELECT pgtrickle.create_stream_table('st', 'SELECT id FROM src', schedule => '1s', refresh_mode => 'DIFFERENTIAL');
INSERT INTO src VALUES (1);
});
wait_ok('postgres', n_schedulers('after_drop'), '1', 30,
	"after dropping $NDB databases, a new database with pg_trickle gets a scheduler");
wait_ok('after_drop', 'SELECT count(*) FROM st', '1', 15, '... and it refreshes');

sql('postgres', 'INSERT INTO src VALUES (2)');
wait_ok('postgres', 'SELECT count(*) FROM st', '2', 15, 'postgres still refreshing');
is(sql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle launcher'"), '1', 'one launcher');

$node->stop;
done_testing();
