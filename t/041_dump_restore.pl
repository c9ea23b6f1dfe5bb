# Copyright (c) pg_trickle contributors
#
# 041_dump_restore.pl — stream tables through the real pg_dump, pg_restore
# and pg_dumpall, into a new database and into a new cluster.
#
# A source database holds stream tables of every refresh mode (DIFFERENTIAL
# behind its sources, IMMEDIATE, FULL, AUTO, a stream table over a stream
# table, a partitioned source, a SUSPENDED one), with a user index, a grant
# and a comment.  Each way of moving it must give back stream tables, not
# plain tables: same modes, schedules and statuses, the index, grant and
# comment, no change buffer copied, sources writable at every moment of the
# restore (writes between the sections of a custom-format restore), IMMEDIATE
# ones exact at once, and every stream table exact after DML and a refresh.
# The ways: custom format restored section by section, directory format
# with pg_restore -j 2, plain format through psql, --schema-only (custom),
# and pg_dumpall into a second cluster.  Finally DROP EXTENSION refuses with
# stream tables present, and CASCADE leaves no stream table, buffer,
# trigger or scheduler behind.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PgtTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $src_node = PgtTest::start_node('dump_src');
my $tmp = PostgreSQL::Test::Utils::tempdir;

sub sql { my ($node, $db, $q) = @_; return PgtTest::sql($node, $db, $q); }

my @st = (
	[ 'rev_diff', 'region, n, s',
	  'SELECT c.region, count(*) AS n, sum(o.amount) AS s FROM orders o JOIN cust c ON c.id = o.cust_id GROUP BY c.region' ],
	[ 'rev_imm', 'region, n, s',
	  'SELECT c.region, count(*) AS n, sum(o.amount) AS s FROM orders o JOIN cust c ON c.id = o.cust_id GROUP BY c.region' ],
	[ 'big_full', 'id, amount', 'SELECT id, amount FROM orders WHERE amount > 50' ],
	[ 'lines_auto', 'sku, qty', 'SELECT sku, qty FROM lines WHERE qty > 1' ],
	[ 'over_st', 'region, n', 'SELECT region, n FROM rev_diff WHERE n > 1' ],
	[ 'ev_diff', 'kind, n', 'SELECT kind, count(*) AS n FROM events GROUP BY kind' ],
	[ 'ev_imm', 'id, kind', 'SELECT id, kind FROM events WHERE id % 2 = 0' ],
	[ 'paused', 'id', 'SELECT id FROM cust WHERE id > 3' ],
);

sql($src_node, 'postgres', 'CREATE DATABASE src');
sql($src_node, 'src', q{
CREATE EXTENSION pg_trickle;
CREATE ROLE st_reader;
CREATE TABLE cust (id int PRIMARY KEY, region text);
CREATE TABLE orders (id int PRIMARY KEY, cust_id int, amount numeric);
CREATE TABLE lines (sku text, qty int);
CREATE TABLE events (id int, kind text) PARTITION BY RANGE (id);
CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (0) TO (1000);
CREATE TABLE events_2 PARTITION OF events FOR VALUES FROM (1000) TO (1000000);
INSERT INTO cust SELECT g, 'r' || (g % 3) FROM generate_series(1, 10) g;
INSERT INTO orders SELECT g, 1 + g % 10, g FROM generate_series(1, 100) g;
INSERT INTO lines SELECT 'sku' || (g % 4), g % 3 FROM generate_series(1, 40) g;
INSERT INTO lines SELECT sku, qty FROM lines WHERE qty = 2;  -- duplicate rows
INSERT INTO events SELECT g, 'k' || (g % 5) FROM generate_series(1, 2000, 7) g;
SELECT pgtrickle.create_stream_table('rev_diff', $$SELECT c.region, count(*) AS n, sum(o.amount) AS s FROM orders o JOIN cust c ON c.id = o.cust_id GROUP BY c.region$$, schedule => '1h', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('rev_imm', $$SELECT c.region, count(*) AS n, sum(o.amount) AS s FROM orders o JOIN cust c ON c.id = o.cust_id GROUP BY c.region$$, refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('big_full', 'SELECT id, amount FROM orders WHERE amount > 50', schedule => '1h', refresh_mode => 'FULL');
SELECT pgtrickle.create_stream_table('lines_auto', 'SELECT sku, qty FROM lines WHERE qty > 1', schedule => '1h');
SELECT pgtrickle.create_stream_table('over_st', 'SELECT region, n FROM rev_diff WHERE n > 1', schedule => '1h', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('ev_diff', 'SELECT kind, count(*) AS n FROM events GROUP BY kind', schedule => '1h', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('ev_imm', 'SELECT id, kind FROM events WHERE id % 2 = 0', refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table('paused', 'SELECT id FROM cust WHERE id > 3', schedule => '1h', refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.alter_stream_table('paused', status => 'SUSPENDED');
CREATE INDEX rev_diff_by_s ON rev_diff (s);
GRANT SELECT ON rev_diff TO st_reader;
COMMENT ON TABLE rev_imm IS 'revenue, kept by every write';
-- changes the DIFFERENTIAL ones have not applied yet: the dump is behind
INSERT INTO orders VALUES (101, 2, 1000);
UPDATE cust SET region = 'r9' WHERE id = 4;
DELETE FROM lines WHERE qty = 2 AND sku = 'sku1';
INSERT INTO events VALUES (5000, 'k9'), (8, 'k9');
});

my $settings_q = q{SELECT pgt_name, refresh_mode, effective_refresh_mode, coalesce(schedule, '-'), status, row_identity
  FROM pgtrickle.pgt_stream_tables ORDER BY pgt_name};
my $src_settings = sql($src_node, 'src', $settings_q);

# every stream table equals its query (EXCEPT ALL both ways)
sub check_exact
{
	my ($node, $db, $label) = @_;
	for my $s (@st)
	{
		my ($name, $cols, $q) = @$s;
		is(sql($node, $db, PgtTest::diff_sql($name, $cols, $q)), '0 0', "$label: $name equals its query");
	}
}

# what a restored database must show, then DML, refresh, exactness
sub check_restored
{
	my ($node, $db, $label, %opt) = @_;
	if ($opt{no_status})
	{
		# a --schema-only dump carries definitions, not runtime state
		(my $want = $src_settings) =~ s/\|(ACTIVE|SUSPENDED)\|/|ACTIVE|/g;
		is(sql($node, $db, $settings_q), $want, "$label: same stream tables, modes, schedules");
	}
	else
	{
		is(sql($node, $db, $settings_q), $src_settings, "$label: same stream tables, modes, schedules, statuses");
	}
	is(sql($node, $db, 'SELECT count(*) FROM pgtrickle.pgt_stream_tables WHERE restore_pending OR pgt_relid <> format(\'%I.%I\', pgt_schema, pgt_name)::regclass'),
		'0', "$label: every stream table attached to its own table");
	is(sql($node, $db, q{SELECT count(*) FROM pg_indexes WHERE indexname = 'rev_diff_by_s'}), '1', "$label: user index kept");
	is(sql($node, $db, q{SELECT has_table_privilege('st_reader', 'rev_diff', 'SELECT')}), 't', "$label: grant kept");
	is(sql($node, $db, q{SELECT obj_description('rev_imm'::regclass, 'pg_class')}), 'revenue, kept by every write',
		"$label: comment kept");
	is(sql($node, $db, q{SELECT string_agg(check_name || '=' || severity, ',' ORDER BY check_name) FROM pgtrickle.health_check() WHERE check_name IN ('capture_triggers', 'change_buffers', 'error_tables', 'restore_pending')}),
		'capture_triggers=OK,change_buffers=OK,error_tables=OK,restore_pending=OK', "$label: health_check sees triggers, buffers, no errors, nothing waiting");
	is(sql($node, $db, q{SELECT count(*) FROM pg_depend d JOIN pgtrickle.pgt_stream_tables s ON d.objid = s.pgt_relid
		 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'n'}), scalar(@st),
		"$label: every stream table depends on the extension");
	# IMMEDIATE ones are exact at once, also after a write
	sql($node, $db, 'INSERT INTO orders VALUES (102, 3, 5); INSERT INTO events VALUES (10, \'k1\')');
	for my $s (grep { $_->[0] =~ /_imm$/ } @st)
	{
		is(sql($node, $db, PgtTest::diff_sql(@$s)), '0 0', "$label: $s->[0] exact after a write, no refresh");
	}
	# DML of every kind, then refresh everything in dependency order
	sql($node, $db, q{
		INSERT INTO orders SELECT g, 1 + g % 9, g % 70 FROM generate_series(200, 260) g;
		UPDATE orders SET amount = amount + 1 WHERE id % 7 = 0;
		DELETE FROM orders WHERE id % 11 = 0;
		UPDATE cust SET region = 'r1' WHERE id = 5;
		INSERT INTO lines VALUES ('sku2', 2), ('sku2', 2);
		DELETE FROM events WHERE id % 3 = 0;
		INSERT INTO events SELECT g, 'k2' FROM generate_series(3000, 3010) g;
	});
	sql($node, $db, q{SELECT pgtrickle.resume_stream_table('paused')}) unless $opt{no_status};
	for my $name (qw(rev_diff big_full lines_auto over_st ev_diff paused))
	{
		sql($node, $db, "SELECT pgtrickle.refresh_stream_table('$name')");
	}
	check_exact($node, $db, $label);
	is(sql($node, $db, q{SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
		 WHERE s.pgt_name = 'rev_diff' AND h.action = 'FULL' AND h.status = 'COMPLETED'}) >= 1 ? 1 : 0, 1,
		"$label: the first refresh of a restored DIFFERENTIAL stream table is FULL");
}

my ($h, $p) = ($src_node->host, $src_node->port);
my @conn = ('-h', $h, '-p', $p);

# ---------------------------------------------------------- custom, by section
command_ok([ 'pg_dump', @conn, '-Fc', '-f', "$tmp/src.dump", 'src' ], 'pg_dump -Fc');
my ($list) = run_command([ 'pg_restore', '-l', "$tmp/src.dump" ]);
unlike($list, qr/pgtrickle_changes/, 'no change buffer in the dump');
like($list, qr/TABLE DATA pgtrickle pgt_stream_tables/, 'the catalog rows are in the dump');

sql($src_node, 'postgres', 'CREATE DATABASE dst_custom');
my $n_writes = 0;
sub write_sources
{
	my ($db, $when) = @_;
	$n_writes++;
	my $id = 100000 + $n_writes * 10;
	my ($ret, $out, $err) = $src_node->psql($db, qq{
		INSERT INTO orders VALUES ($id, 1, 7), ($id + 1, 2, 8);
		UPDATE orders SET amount = amount + 1 WHERE id = $id;
		DELETE FROM orders WHERE id = $id + 1;
		INSERT INTO cust VALUES ($id, 'rw');
		INSERT INTO events VALUES ($id, 'kw');
		INSERT INTO lines VALUES ('skuw', 5);});
	is($ret, 0, "sources writable $when") or diag $err;
}
for my $section (qw(pre-data data post-data))
{
	command_ok([ 'pg_restore', @conn, '--section', $section, '-d', 'dst_custom', "$tmp/src.dump" ],
		"pg_restore --section $section");
	write_sources('dst_custom', "after the $section section");
}
check_restored($src_node, 'dst_custom', 'custom');

# ---------------------------------------------------------- directory, parallel
command_ok([ 'pg_dump', @conn, '-Fd', '-j', '2', '-f', "$tmp/src.dir", 'src' ], 'pg_dump -Fd -j 2');
sql($src_node, 'postgres', 'CREATE DATABASE dst_dir');
command_ok([ 'pg_restore', @conn, '-j', '2', '-d', 'dst_dir', "$tmp/src.dir" ], 'pg_restore -j 2');
check_restored($src_node, 'dst_dir', 'directory');

# ---------------------------------------------------------- plain, through psql
command_ok([ 'pg_dump', @conn, '-f', "$tmp/src.sql", 'src' ], 'pg_dump plain');
sql($src_node, 'postgres', 'CREATE DATABASE dst_plain');
command_ok([ 'psql', @conn, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'dst_plain', '-f', "$tmp/src.sql" ],
	'psql -f plain dump, ON_ERROR_STOP');
check_restored($src_node, 'dst_plain', 'plain');

# ---------------------------------------------------------- schema only
command_ok([ 'pg_dump', @conn, '-Fc', '--schema-only', '-f', "$tmp/schema.dump", 'src' ], 'pg_dump --schema-only');
sql($src_node, 'postgres', 'CREATE DATABASE dst_schema');
command_ok([ 'pg_restore', @conn, '--exit-on-error', '-d', 'dst_schema', "$tmp/schema.dump" ], 'pg_restore of --schema-only');
is(sql($src_node, 'dst_schema', 'SELECT count(*) FROM pgtrickle.pgt_stream_tables'), scalar(@st),
	'schema-only: the stream tables come back');
# the sources are empty; give them rows, then every stream table must follow
sql($src_node, 'dst_schema', q{
	INSERT INTO cust SELECT g, 'r' || (g % 3) FROM generate_series(1, 10) g;
	INSERT INTO orders SELECT g, 1 + g % 10, g FROM generate_series(1, 100) g;
	INSERT INTO lines SELECT 'sku' || (g % 4), g % 3 FROM generate_series(1, 40) g;
	INSERT INTO events SELECT g, 'k' || (g % 5) FROM generate_series(1, 2000, 7) g;
});
check_restored($src_node, 'dst_schema', 'schema-only', no_status => 1);

# ---------------------------------------------------------- pg_dumpall, new cluster
my $dst_node = PgtTest::start_node('dump_dst');
command_ok([ 'pg_dumpall', @conn, '--exclude-database=dst_*', '-f', "$tmp/all.sql" ], 'pg_dumpall');
my ($out, $err) = run_command([ 'psql', '-h', $dst_node->host, '-p', $dst_node->port, '-X', '-q',
	'-f', "$tmp/all.sql", 'postgres' ]);
# the only error allowed: the bootstrap superuser exists already
my @errors = grep { /ERROR/ && !/role "[^"]+" already exists/ } split /\n/, ($err // '');
is(scalar(@errors), 0, 'pg_dumpall restores into a new cluster without errors') or diag join("\n", @errors);
check_restored($dst_node, 'src', 'new cluster');
PgtTest::wait_ok($dst_node, 'src', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = 'src'},
	'1', 30, 'new cluster: a scheduler runs in the restored database');

# ---------------------------------------------------------- DROP EXTENSION
my ($r2, $o2, $e2) = $src_node->psql('dst_dir', 'DROP EXTENSION pg_trickle');
isnt($r2, 0, 'DROP EXTENSION without CASCADE is refused while stream tables exist');
like($e2, qr/cannot drop extension pg_trickle because other objects depend on it/, '... with PostgreSQL\'s message');
is(sql($src_node, 'dst_dir', 'SELECT count(*) FROM pgtrickle.pgt_stream_tables'), scalar(@st), '... and nothing was dropped');
check_exact($src_node, 'dst_dir', 'after a refused DROP EXTENSION');
PgtTest::wait_ok($src_node, 'dst_dir', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = 'dst_dir'},
	'1', 30, 'a scheduler runs in dst_dir');
sql($src_node, 'dst_dir', 'DROP EXTENSION pg_trickle CASCADE');
is(sql($src_node, 'dst_dir', q{SELECT count(*) FROM pg_class WHERE relname IN ('rev_diff', 'rev_imm', 'big_full', 'lines_auto', 'over_st', 'ev_diff', 'ev_imm', 'paused')}),
	'0', 'CASCADE drops every stream table');
is(sql($src_node, 'dst_dir', q{SELECT count(*) FROM pg_namespace WHERE nspname = 'pgtrickle_changes'}), '0', '... the buffer schema');
is(sql($src_node, 'dst_dir', q{SELECT count(*) FROM pg_trigger WHERE tgname LIKE '\_\_pgt\_%'}), '0', '... every trigger on the sources');
is(sql($src_node, 'dst_dir', q{SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'pgtrickle%'}), '0', '... the event triggers');
is(sql($src_node, 'dst_dir', q{SELECT count(*) FROM pg_proc WHERE pronamespace = 'pgtrickle'::regnamespace}), '0', '... the functions');
is(sql($src_node, 'dst_dir', 'SELECT count(*) FROM orders') > 0 ? 1 : 0, 1, '... and keeps the sources');
sql($src_node, 'dst_dir', 'INSERT INTO orders VALUES (999999, 1, 1)');
PgtTest::wait_ok($src_node, 'dst_dir', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = 'dst_dir'},
	'0', 30, '... and its scheduler exits');

done_testing();
