# Copyright (c) pg_trickle contributors
#
# 040_upgrade.pl — ALTER EXTENSION pg_trickle UPDATE from every older
# version kept in sql/ (today: 0.1.0), on a database that has stream tables.
#
# The old version is installed from its kept install script (CREATE
# EXTENSION ... VERSION '0.1.0') and stream tables of every mode are created.
# Only the current library exists, so what the 0.1.0 library left behind
# that the current one does not is set up by hand first (marked below):
# stream tables and change buffers depended automatically on the extension,
# and guard triggers had no comment.  Then:
#   - ALTER EXTENSION pg_trickle UPDATE reaches the default version;
#   - the extension's objects (members, function definitions, tables with
#     their columns, constraints, indexes and triggers, views, event
#     triggers, grants, configuration tables) equal a fresh install's;
#   - the stream tables keep being maintained (DML, refresh, IMMEDIATE
#     after every write) and equal their queries;
#   - what 0.2.0 changed holds for the old stream tables too: DROP EXTENSION
#     refuses, change buffers are members (left out of pg_dump), and a dump
#     of the upgraded database, also --schema-only, restores them.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PgtTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PgtTest::start_node('upgrade', "pg_trickle.enabled = off\n");
my $tmp = PostgreSQL::Test::Utils::tempdir;
sub sql { my ($db, $q) = @_; return PgtTest::sql($node, $db, $q); }

my $default = sql('postgres', q{SELECT default_version FROM pg_available_extensions WHERE name = 'pg_trickle'});
my @old = split /\n/, sql('postgres', qq{SELECT version FROM pg_available_extension_versions
	WHERE name = 'pg_trickle' AND version <> '$default' ORDER BY version});
ok(scalar(@old) >= 1, "older versions to upgrade from: @old");

my @st = (
	[ 'agg_diff', 'region, n, s',
	  'SELECT c.region, count(*) AS n, sum(o.amount) AS s FROM orders o JOIN cust c ON c.id = o.cust_id GROUP BY c.region' ],
	[ 'agg_imm', 'region, n, s',
	  'SELECT c.region, count(*) AS n, sum(o.amount) AS s FROM orders o JOIN cust c ON c.id = o.cust_id GROUP BY c.region' ],
	[ 'big_full', 'id, amount', 'SELECT id, amount FROM orders WHERE amount > 50' ],
	[ 'big_auto', 'id, amount', 'SELECT id, amount FROM orders WHERE amount > 20' ],
	[ 'on_st', 'region, n', 'SELECT region, n FROM agg_diff WHERE n > 1' ],
);

# the objects of the extension, as text, comparable between databases
my $objects_q = q{
SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_trickle')
   AND NOT (d.classid = 'pg_class'::regclass
            AND (SELECT relnamespace FROM pg_class WHERE oid = d.objid) = 'pgtrickle_changes'::regnamespace)
   AND NOT (d.classid = 'pg_type'::regclass
            AND (SELECT typnamespace FROM pg_type WHERE oid = d.objid) = 'pgtrickle_changes'::regnamespace)
UNION ALL
SELECT 'function ' || p.oid::regprocedure || ' ' || CASE WHEN p.prokind = 'a' THEN '' ELSE pg_get_functiondef(p.oid) END || ' acl ' || coalesce(p.proacl::text, '-')
  FROM pg_proc p WHERE p.pronamespace = 'pgtrickle'::regnamespace
UNION ALL
SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-') || ' ' || a.attnum
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE c.relnamespace = 'pgtrickle'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'relation ' || c.oid::regclass || ' ' || c.relkind::text || ' acl ' || coalesce(c.relacl::text, '-')
       || ' ' || coalesce(pg_get_viewdef(c.oid), '')
  FROM pg_class c WHERE c.relnamespace = 'pgtrickle'::regnamespace
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'pgtrickle'::regnamespace
UNION ALL
SELECT 'index ' || pg_get_indexdef(indexrelid)
  FROM pg_index WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'pgtrickle'::regnamespace)
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'pgtrickle'::regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT 'event trigger ' || evtname || ' ' || evtevent || ' ' || coalesce(evttags::text, '-') || ' ' || evtfoid::regproc
  FROM pg_event_trigger
UNION ALL
SELECT 'config ' || coalesce(extconfig::regclass[]::text, '-') || ' ' || coalesce(extcondition::text, '-')
       || ' ' || extversion
  FROM pg_extension WHERE extname = 'pg_trickle'
ORDER BY 1};

sql('postgres', 'CREATE DATABASE fresh');
sql('fresh', 'CREATE EXTENSION pg_trickle');
my $fresh = sql('fresh', $objects_q);

for my $old (@old)
{
	my $db = "up_" . ($old =~ s/\./_/gr);
	sql('postgres', "CREATE DATABASE $db");
	sql($db, qq{
		CREATE EXTENSION pg_trickle VERSION '$old';
		CREATE TABLE cust (id int PRIMARY KEY, region text);
		CREATE TABLE orders (id int PRIMARY KEY, cust_id int, amount numeric);
		INSERT INTO cust SELECT g, 'r' || (g % 3) FROM generate_series(1, 10) g;
		INSERT INTO orders SELECT g, 1 + g % 10, g FROM generate_series(1, 100) g;
	});
	is(sql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'pg_trickle'}), $old, "$old installed");
	for my $s (@st)
	{
		my ($name, $cols, $q) = @$s;
		my $mode = $name =~ /_imm$/ ? 'IMMEDIATE' : $name =~ /_full$/ ? 'FULL' : $name =~ /_auto$/ ? 'AUTO' : 'DIFFERENTIAL';
		sql($db, "SELECT pgtrickle.create_stream_table('$name', \$q\$$q\$q\$, refresh_mode => '$mode', schedule => "
			  . ($mode eq 'IMMEDIATE' ? 'NULL' : "'1h'") . ')');
	}
	# pending changes across the upgrade
	sql($db, 'INSERT INTO orders VALUES (101, 2, 500); UPDATE cust SET region = \'r7\' WHERE id = 3');

	# what the 0.1.0 library left behind and the current one does not
	if ($old eq '0.1.0')
	{
		sql($db, q{
			UPDATE pg_depend SET deptype = 'a'
			 WHERE refclassid = 'pg_extension'::regclass AND deptype IN ('n', 'e')
			   AND classid = 'pg_class'::regclass
			   AND (objid IN (SELECT pgt_relid FROM pgtrickle.pgt_stream_tables)
			        OR objid IN (SELECT oid FROM pg_class WHERE relnamespace = 'pgtrickle_changes'::regnamespace AND relkind = 'r'));
			DO $$DECLARE r record;
			BEGIN
			  FOR r IN SELECT pgt_schema, pgt_name FROM pgtrickle.pgt_stream_tables LOOP
			    EXECUTE format('COMMENT ON TRIGGER __pgt_guard ON %I.%I IS NULL', r.pgt_schema, r.pgt_name);
			  END LOOP;
			END$$;
		});
	}

	sql($db, 'ALTER EXTENSION pg_trickle UPDATE');
	is(sql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'pg_trickle'}), $default,
		"$old: ALTER EXTENSION UPDATE reaches $default");
	my $upgraded = sql($db, $objects_q);
	is($upgraded, $fresh, "$old: the extension's objects equal a fresh install's")
	  or diag "diff:\n" . join("\n", map { "- $_" } grep { my $l = $_; !grep { $_ eq $l } split /\n/, $upgraded } split /\n/, $fresh)
	  . "\n" . join("\n", map { "+ $_" } grep { my $l = $_; !grep { $_ eq $l } split /\n/, $fresh } split /\n/, $upgraded);

	# the old stream tables keep working
	sql($db, q{
		INSERT INTO orders SELECT g, 1 + g % 9, g % 80 FROM generate_series(200, 240) g;
		UPDATE orders SET amount = amount * 2 WHERE id % 5 = 0;
		DELETE FROM orders WHERE id % 13 = 0;
		UPDATE cust SET region = 'r1' WHERE id = 6;
	});
	is(sql($db, PgtTest::diff_sql(@{ $st[1] })), '0 0', "$old: IMMEDIATE stream table exact after writes");
	for my $name (qw(agg_diff big_full big_auto on_st))
	{
		sql($db, "SELECT pgtrickle.refresh_stream_table('$name')");
	}
	for my $s (@st)
	{
		is(sql($db, PgtTest::diff_sql(@$s)), '0 0', "$old: $s->[0] equals its query after the upgrade");
	}
	my ($ret, $out, $err) = $node->psql($db, 'DROP EXTENSION pg_trickle');
	isnt($ret, 0, "$old: DROP EXTENSION now refuses for the old stream tables");
	is(sql($db, q{SELECT count(*) FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
		 WHERE c.relnamespace = 'pgtrickle_changes'::regnamespace AND c.relkind = 'r'
		   AND d.refclassid = 'pg_extension'::regclass AND d.deptype <> 'e'}), '0',
		"$old: every old change buffer is a member of the extension");

	# a dump of the upgraded database brings the old stream tables back
	for my $variant ([ 'data', [] ], [ 'schema', ['--schema-only'] ])
	{
		my ($label, $opts) = @$variant;
		my $target = "${db}_$label";
		command_ok([ 'pg_dump', '-h', $node->host, '-p', $node->port, '-Fc', @$opts,
			'-f', "$tmp/$db.$label.dump", $db ], "$old: pg_dump ($label) of the upgraded database");
		sql('postgres', "CREATE DATABASE $target");
		command_ok([ 'pg_restore', '-h', $node->host, '-p', $node->port, '--exit-on-error',
			'-d', $target, "$tmp/$db.$label.dump" ], "$old: pg_restore ($label)");
		is(sql($target, 'SELECT count(*) FROM pgtrickle.pgt_stream_tables WHERE NOT restore_pending'),
			scalar(@st), "$old: restored ($label): every stream table is back and attached");
		if ($label eq 'schema')
		{
			sql($target, q{
				INSERT INTO cust SELECT g, 'r' || (g % 3) FROM generate_series(1, 10) g;
				INSERT INTO orders SELECT g, 1 + g % 10, g FROM generate_series(1, 50) g;});
		}
		for my $name (qw(agg_diff big_full big_auto on_st))
		{
			sql($target, "SELECT pgtrickle.refresh_stream_table('$name')");
		}
		for my $s (@st)
		{
			is(sql($target, PgtTest::diff_sql(@$s)), '0 0', "$old: restored ($label): $s->[0] equals its query");
		}
	}
}

done_testing();
