# Copyright (c) pg_trickle contributors
#
# PgtTest.pm — what the scheduler TAP tests share: a preloaded cluster,
# running SQL, and polling until a query returns what is expected (no
# fixed sleeps).
#
#   my $node = PgtTest::start_node('name', "extra = setting\n");
#   PgtTest::sql($node, 'db', 'SELECT 1');
#   my ($ok, $secs, $out) = PgtTest::poll_until($node, 'db', $q, $expected, $timeout);
#   PgtTest::wait_ok($node, 'db', $q, $expected, $timeout, $test_name);
#   PgtTest::diff_sql($st, $cols, $query);

package PgtTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use Test::More;
use Time::HiRes qw(time usleep);

# start_node starts a new cluster with pg_trickle preloaded
sub start_node
{
	my ($name, $extra_conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf(
		'postgresql.conf', q{
shared_preload_libraries = 'pg_trickle'
autovacuum = off
log_min_messages = warning
} . ($extra_conf // ''));
	$node->start;
	return $node;
}

sub sql
{
	my ($node, $db, $q) = @_;
	return $node->safe_psql($db, $q);
}

# poll_until runs $q every 50 ms until it returns $expected without error
sub poll_until
{
	my ($node, $db, $q, $expected, $timeout) = @_;
	my $t0 = time;
	my ($out, $err) = ('', '');
	while (1)
	{
		$node->psql($db, $q, stdout => \$out, stderr => \$err);
		$out //= '';
		return (1, time - $t0, $out) if $out eq $expected && ($err // '') eq '';
		last if time - $t0 > $timeout;
		usleep(50_000);
	}
	return (0, time - $t0, $out . (($err // '') ne '' ? " (stderr: $err)" : ''));
}

# wait_ok is one test: poll_until succeeds within $timeout seconds
sub wait_ok
{
	my ($node, $db, $q, $expected, $timeout, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($ok, $secs, $out) = poll_until($node, $db, $q, $expected, $timeout);
	ok($ok, $name . ($ok ? sprintf(' (%.2fs)', $secs) : ''))
	  or diag "waited ${timeout}s for\n  $q\nto return '$expected'; last output: '$out'";
	return $ok ? $secs : undef;
}

# diff_sql: SQL returning '0 0' when the columns $cols of stream table $st
# and the rows of $query are equal as multisets (else the two counts of
# rows missing on either side)
sub diff_sql
{
	my ($st, $cols, $query) = @_;
	return "SELECT (SELECT count(*) FROM (SELECT $cols FROM $st EXCEPT ALL SELECT * FROM ($query) q) a) "
	  . "|| ' ' || (SELECT count(*) FROM (SELECT * FROM ($query) q EXCEPT ALL SELECT $cols FROM $st) b)";
}

# set_guc sets a pg_trickle setting cluster-wide and reloads
sub set_guc
{
	my ($node, $name, $value) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET $name = '$value'");
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	return;
}

1;
