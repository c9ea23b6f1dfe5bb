# Copyright (c) pg_trickle contributors
#
# 045_logical_replication.pl — stream tables replicated for real by logical
# replication (issue 12, item 3).
#
# A publisher cluster (wal_level = logical, pg_trickle loaded) has a
# DIFFERENTIAL grouped stream table, an IMMEDIATE keyless stream table with
# duplicate rows and a FULL one, in a publication FOR TABLE of the three
# (whole tables, the recommended setup: docs/SQL_REFERENCE.md,
# "Publishing and replicating stream tables").  A subscriber cluster has
# plain tables with the same columns, hidden ones included, created from
# the column query the documentation gives.  DML on the sources and
# refreshes on the publisher, including a query change that rebuilds a
# stream table's storage (it stays in the publication), then after
# catch-up the subscriber's tables equal the stream tables as multisets,
# and the stream tables equal their queries.
#
# Also: a FOR ALL TABLES publication on the publisher does not break
# refreshes or buffer trimming.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PgtTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $pub = PgtTest::start_node('publisher', "wal_level = logical\nmax_wal_senders = 10\nmax_replication_slots = 10\npg_trickle.enabled = off\n");
my $sub = PgtTest::start_node('subscriber', "pg_trickle.enabled = off\n");

sub psql_pub { return PgtTest::sql($pub, 'postgres', @_); }
sub psql_sub { return PgtTest::sql($sub, 'postgres', @_); }

psql_pub(q{
CREATE EXTENSION pg_trickle;
CREATE TABLE src (id int PRIMARY KEY, k int, v int);
INSERT INTO src SELECT g, g % 4, g FROM generate_series(1, 20) g;
CREATE TABLE dup (k int, v int);
INSERT INTO dup VALUES (1, 1), (1, 1), (1, 1), (2, 2), (2, 2), (NULL, 3);
SELECT pgtrickle.create_stream_table('st_grp',
    'SELECT k, sum(v) AS s, count(*) AS n FROM src GROUP BY k',
    schedule => '1h', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('st_dup', 'SELECT k, v FROM dup WHERE v < 100',
    refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('st_full', 'SELECT k, max(v) AS m FROM src GROUP BY k',
    schedule => '1h', refresh_mode => 'FULL');
CREATE PUBLICATION pgt_pub FOR TABLE st_grp, st_dup, st_full;
});

# the subscriber's tables: the documented column query, run on the publisher
my %cols;
for my $st (qw(st_grp st_dup st_full))
{
	$cols{$st} = psql_pub(qq{
SELECT string_agg(format('%I %s', attname, format_type(atttypid, atttypmod)), ', ' ORDER BY attnum)
  FROM pg_attribute WHERE attrelid = '$st'::regclass AND attnum > 0 AND NOT attisdropped});
	psql_sub("CREATE TABLE $st ($cols{$st})");
}
like($cols{st_grp}, qr/__pgt_row_id bigint/, 'the published columns include the hidden ones');

my $connstr = $pub->connstr . ' dbname=postgres';
psql_sub("CREATE SUBSCRIPTION pgt_sub CONNECTION '$connstr' PUBLICATION pgt_pub");
$sub->wait_for_subscription_sync($pub, 'pgt_sub');

# visible columns of each, sorted, as one text (multiset comparison)
my %visible = (st_grp => 'k, s, n', st_dup => 'k, v', st_full => 'k, m');
sub rows_of
{
	my ($node, $st) = @_;
	return PgtTest::sql($node, 'postgres',
		"SELECT coalesce(string_agg(r, ' ' ORDER BY r), '') FROM (SELECT ROW($visible{$st})::text AS r FROM $st) t");
}

sub check_all
{
	my ($label) = @_;
	$pub->wait_for_catchup('pgt_sub');
	for my $st (qw(st_grp st_dup st_full))
	{
		my $q = psql_pub("SELECT defining_query FROM pgtrickle.pgt_stream_tables WHERE pgt_name = '$st'");
		is(psql_pub(PgtTest::diff_sql($st, $visible{$st}, $q)), '0 0', "$label: $st equals its query");
		is(rows_of($sub, $st), rows_of($pub, $st), "$label: subscriber's $st equals the stream table");
	}
}

check_all('initial copy');

# DML on the sources, refreshes on the publisher
psql_pub(q{
INSERT INTO src SELECT g, g % 5, g * 2 FROM generate_series(21, 40) g;
UPDATE src SET v = v + 100 WHERE id % 3 = 0;
DELETE FROM src WHERE id % 7 = 0;
UPDATE src SET k = 9 WHERE id = 1;
DELETE FROM dup WHERE ctid = (SELECT min(ctid) FROM dup WHERE k = 1);
INSERT INTO dup VALUES (2, 2), (3, 3), (3, 3);
UPDATE dup SET v = 5 WHERE k = 2;
});
psql_pub(q{
BEGIN;
DELETE FROM dup WHERE k = 3;
INSERT INTO dup VALUES (1, 1), (4, 4);
COMMIT;
SELECT pgtrickle.refresh_stream_table('st_grp');
SELECT pgtrickle.refresh_stream_table('st_full');
});
is(psql_pub(q{SELECT status FROM pgtrickle.pgt_refresh_history ORDER BY refresh_id DESC LIMIT 1}),
	'COMPLETED', 'refreshes of published stream tables complete');
check_all('after DML and refreshes');

# a group disappears, the multiset loses all its copies of a row, TRUNCATE
psql_pub(q{
DELETE FROM src WHERE k = 9;
DELETE FROM dup WHERE k = 1;
TRUNCATE dup;
INSERT INTO dup VALUES (7, 7), (7, 7);
SELECT pgtrickle.refresh_stream_table('st_grp');
SELECT pgtrickle.refresh_stream_table('st_full');
});
check_all('after deletes and TRUNCATE');

# a query change that adds a column rebuilds st_grp's storage: it stays in
# the publication, and the rebuild's TRUNCATE makes the subscriber drop the
# old rows.  Logical replication does not replicate DDL: the documented
# procedure disables the subscription, changes the query, adds the columns
# the stream table now has (visible and hidden) to the subscriber's table,
# and enables the subscription again.
psql_sub(q{ALTER SUBSCRIPTION pgt_sub DISABLE});
psql_pub(q{SELECT pgtrickle.alter_stream_table('st_grp',
    query => 'SELECT k, sum(v) AS s, count(*) AS n, max(v) AS mx FROM src GROUP BY k')});
is(psql_pub(q{SELECT count(*) FROM pg_publication_tables WHERE pubname = 'pgt_pub' AND tablename = 'st_grp'}),
	'1', 'the rebuilt stream table is still published');
my $have = psql_sub(q{SELECT string_agg(quote_literal(attname), ',') FROM pg_attribute
  WHERE attrelid = 'st_grp'::regclass AND attnum > 0 AND NOT attisdropped});
my $add = psql_pub(qq{
SELECT string_agg(format('ADD COLUMN %I %s', attname, format_type(atttypid, atttypmod)), ', ' ORDER BY attnum)
  FROM pg_attribute WHERE attrelid = 'st_grp'::regclass AND attnum > 0 AND NOT attisdropped
   AND attname NOT IN ($have)});
like($add, qr/ADD COLUMN mx integer/, 'the subscriber lacks the new column');
psql_sub("ALTER TABLE st_grp $add");
psql_sub(q{ALTER SUBSCRIPTION pgt_sub ENABLE});
$visible{st_grp} = 'k, s, n, mx';
psql_pub(q{
INSERT INTO src VALUES (100, 2, 1000), (101, 11, 5);
DELETE FROM src WHERE id = 2;
SELECT pgtrickle.refresh_stream_table('st_grp');
SELECT pgtrickle.refresh_stream_table('st_full');
});
check_all('after a query change');

# FOR ALL TABLES also publishes pg_trickle's catalog and change buffers;
# refreshes, IMMEDIATE writes and buffer trimming keep working (the user's
# keyless source needs a replica identity of its own)
psql_pub(q{ALTER TABLE dup REPLICA IDENTITY FULL; CREATE PUBLICATION pgt_all FOR ALL TABLES});
is( psql_pub(q{SELECT string_agg(DISTINCT schemaname, ',' ORDER BY schemaname)
  FROM pg_publication_tables WHERE pubname = 'pgt_all' AND schemaname LIKE 'pgtrickle%'}),
	'pgtrickle,pgtrickle_changes', 'FOR ALL TABLES includes the catalog and the change buffers');
psql_pub(q{
INSERT INTO src VALUES (102, 3, 7);
DELETE FROM src WHERE id = 3;
INSERT INTO dup VALUES (8, 8);
DELETE FROM dup WHERE k = 7;
SELECT pgtrickle.refresh_stream_table('st_grp');
SELECT pgtrickle.refresh_stream_table('st_full');
});
is(psql_pub(q{SELECT count(*) FROM pgtrickle_changes.changes_} . psql_pub(q{SELECT 'src'::regclass::oid})),
	'0', 'change buffer trimmed while in a FOR ALL TABLES publication');
check_all('with a FOR ALL TABLES publication');

psql_sub(q{DROP SUBSCRIPTION pgt_sub});
$sub->stop;
$pub->stop;
done_testing();
