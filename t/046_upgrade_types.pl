# Copyright (c) pg_trickle contributors
#
# 046_upgrade_types.pl — issue 12 (h2): from 0.2.0 on, a column whose type's
# equality lives outside pg_catalog and that has no extended hash function
# (isn, ltree, cube, user-defined types) enters __pgt_row_id through its own
# hash function (or not at all) instead of its text form.  A stream table
# created by 0.1.0 holds the old identities; the upgrade marks it for
# reinitializing, so its next refresh is FULL and rewrites them, and the
# refreshes after it are differential and exact.  (Without that step the
# first differential refresh of a grouped one fails with a duplicate key.)
#
# The 0.1.0 identities are forged (the installed library computes the new
# ones): the stored __pgt_row_id of the grouped stream table is set to the
# hash of the key's text form, as 0.1.0 computed it.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PgtTest;
use PostgreSQL::Test::Utils;
use Test::More;

# no scheduler: every refresh here is the test's own
my $node = PgtTest::start_node('upgrade_types', "pg_trickle.enabled = off\n");
sub sql { return PgtTest::sql($node, 'postgres', @_); }

sql(<<'SQL');
CREATE EXTENSION pg_trickle VERSION '0.1.0';
CREATE EXTENSION isn;
CREATE TABLE u (id int PRIMARY KEY, e ean13, v int);
INSERT INTO u VALUES (1, '9780123456786', 1), (2, '9780201633610', 2), (3, NULL, 3);
SELECT pgtrickle.create_stream_table('u_group', 'SELECT e, count(*) AS n, sum(v) AS s FROM u GROUP BY e',
                                     refresh_mode => 'DIFFERENTIAL');
SELECT pgtrickle.create_stream_table('u_int', 'SELECT id, v FROM u WHERE v > 1',
                                     refresh_mode => 'DIFFERENTIAL');
ALTER TABLE u_group DISABLE TRIGGER __pgt_guard;
UPDATE u_group SET __pgt_row_id = pg_catalog.hash_record_extended(ROW(e::text), 0);
ALTER TABLE u_group ENABLE TRIGGER __pgt_guard;
SQL

is(sql("SELECT extversion FROM pg_extension WHERE extname = 'pg_trickle'"), '0.1.0', 'installed 0.1.0');
sql('ALTER EXTENSION pg_trickle UPDATE');
is(sql("SELECT string_agg(pgt_name || '=' || needs_reinit, ' ' ORDER BY pgt_name) FROM pgtrickle.pgt_stream_tables"),
	'u_group=true u_int=false',
	'the upgrade marks only the stream table with an isn column for reinitializing');

my $check = q{SELECT (SELECT count(*) FROM (SELECT e, n, s FROM u_group EXCEPT ALL
                                            SELECT e, count(*), sum(v) FROM u GROUP BY e) x)
                   + (SELECT count(*) FROM (SELECT e, count(*), sum(v) FROM u GROUP BY e
                                            EXCEPT ALL SELECT e, n, s FROM u_group) y)};
my $last_action = q{SELECT h.action FROM pgtrickle.pgt_refresh_history h
                      JOIN pgtrickle.pgt_stream_tables s USING (pgt_id)
                     WHERE s.pgt_name = 'u_group' ORDER BY h.refresh_id DESC LIMIT 1};

sql(q{INSERT INTO u VALUES (4, '978-0-12-345678-6', 4), (5, NULL, 5)});
sql(q{SELECT pgtrickle.refresh_stream_table('u_group')});
is(sql($last_action), 'FULL', 'the first refresh after the upgrade is FULL');
is(sql($check), '0', 'and exact');

sql(q{INSERT INTO u VALUES (6, '9780201633610', 6); DELETE FROM u WHERE id = 1; UPDATE u SET e = '9780123456786' WHERE id = 3});
sql(q{SELECT pgtrickle.refresh_stream_table('u_group')});
is(sql($last_action), 'DIFFERENTIAL', 'the next refresh is differential');
is(sql($check), '0', 'and exact');

$node->stop;
done_testing();
