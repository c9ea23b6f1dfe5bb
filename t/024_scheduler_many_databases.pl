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
use FindBin;
use lib $FindBin::RealBin;
use PgtTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $NDB = 64;

my $node = PgtTest::start_node('schedmany', "log_lock_waits = on\nlog_statement = none\nfsync = off\n");

sub sql { return PgtTest::sql($node, @_); }

sub wait_ok
{
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return PgtTest::wait_ok($node, @_);
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
