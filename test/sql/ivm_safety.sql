--
-- ivm_safety: IMMEDIATE maintenance around nested statements (issue 12).
--
-- 10(d): a user row trigger of a statement on a source that writes the
-- same source runs a nested statement whose AFTER statement trigger fires
-- before the outer statement's: its transition tables hold rows (the
-- outer statement's new ones) that the stream tables do not reflect yet.
-- Such a stream table is recomputed once, by the outer statement's
-- trigger.  Checked for every strategy (grouped with MIN/MAX, keyed
-- projection, DISTINCT, a join) and for INSERT, UPDATE and DELETE outer
-- statements, with the oracle pgt_check.
--
CREATE TABLE sf_src (id int PRIMARY KEY, grp int NOT NULL, val int NOT NULL);
CREATE TABLE sf_dim (grp int PRIMARY KEY, label text NOT NULL);
INSERT INTO sf_dim SELECT g, 'g' || g FROM generate_series(0, 3) g;
INSERT INTO sf_src SELECT i, i % 4, i FROM generate_series(1, 8) i;

SELECT pgtrickle.create_stream_table(name => 'sf_agg',
    query => 'SELECT grp, count(*) AS n, sum(val) AS total, min(val) AS lo, max(val) AS hi FROM sf_src GROUP BY grp',
    refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table(name => 'sf_rows',
    query => 'SELECT id, grp, val FROM sf_src',
    refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table(name => 'sf_dist',
    query => 'SELECT DISTINCT val % 3 AS r FROM sf_src',
    refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table(name => 'sf_join',
    query => 'SELECT s.id, d.label, s.val FROM sf_src s JOIN sf_dim d USING (grp)',
    refresh_mode => 'IMMEDIATE');

CREATE FUNCTION sf_check() RETURNS TABLE (st text, result text)
LANGUAGE sql AS $$
    SELECT s, pgt_check(s::regclass) FROM unnest(ARRAY['sf_agg', 'sf_rows', 'sf_dist', 'sf_join']) s
$$;

-- an inserted row is changed by its own AFTER INSERT row trigger
CREATE FUNCTION sf_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sf_src SET val = val * 10 WHERE id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER sf_bump AFTER INSERT ON sf_src FOR EACH ROW EXECUTE FUNCTION sf_bump();
INSERT INTO sf_src VALUES (20, 1, 7), (21, 2, 8), (22, 3, 1000);
SELECT * FROM sf_check();
SELECT id, val FROM sf_rows WHERE id >= 20 ORDER BY id;
-- in a transaction, then rolled back to a savepoint
BEGIN;
INSERT INTO sf_src VALUES (23, 0, 5);
SAVEPOINT a;
INSERT INTO sf_src VALUES (24, 0, 6);
ROLLBACK TO SAVEPOINT a;
INSERT INTO sf_src VALUES (25, 0, 2);
SELECT * FROM sf_check();
COMMIT;
SELECT * FROM sf_check();
DROP TRIGGER sf_bump ON sf_src;

-- an updated row's trigger deletes another row of the same table
CREATE FUNCTION sf_prune() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sf_src WHERE grp = NEW.grp AND id <> NEW.id AND val < NEW.val;
    RETURN NULL;
END $$;
CREATE TRIGGER sf_prune AFTER UPDATE ON sf_src FOR EACH ROW EXECUTE FUNCTION sf_prune();
UPDATE sf_src SET val = val + 100 WHERE id IN (1, 2);
SELECT * FROM sf_check();
DROP TRIGGER sf_prune ON sf_src;

-- a deleted row's trigger inserts a replacement into the same table
CREATE FUNCTION sf_replace() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sf_src VALUES (OLD.id + 1000, OLD.grp, OLD.val + 1);
    RETURN NULL;
END $$;
CREATE TRIGGER sf_replace AFTER DELETE ON sf_src FOR EACH ROW EXECUTE FUNCTION sf_replace();
DELETE FROM sf_src WHERE grp = 3;
SELECT * FROM sf_check();
DROP TRIGGER sf_replace ON sf_src;

-- a statement-level user trigger that fires after pg_trickle's (its name
-- sorts after "__pgt_ivm_ins") sees a maintained stream table, and its
-- own statement is maintained as an ordinary one
CREATE FUNCTION sf_after_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sf_src SET val = val + 1 WHERE id = (SELECT max(id) FROM sf_src);
    RETURN NULL;
END $$;
CREATE TRIGGER zz_sf_after AFTER INSERT ON sf_src FOR EACH STATEMENT EXECUTE FUNCTION sf_after_stmt();
INSERT INTO sf_src VALUES (30, 2, 3);
SELECT * FROM sf_check();
DROP TRIGGER zz_sf_after ON sf_src;
-- and one that fires before it ("A" sorts before "_")
CREATE TRIGGER "A_sf_before" AFTER INSERT ON sf_src FOR EACH STATEMENT EXECUTE FUNCTION sf_after_stmt();
INSERT INTO sf_src VALUES (31, 2, 4);
SELECT * FROM sf_check();
DROP TRIGGER "A_sf_before" ON sf_src;


--
-- 10(e): the steps of one query on one source -- the DELETE and INSERT by
-- which an IMMEDIATE stream table's maintenance rewrites its changed rows,
-- the insert and update steps of an upsert, the actions of a MERGE -- fire
-- their AFTER triggers one after the other, when all are done.  Applied
-- one by one, each step took for the prior state the current rows minus
-- its own change only (still holding the other steps' changes): wrong for
-- deltas that are not linear in the source (a LEFT JOIN's null-extended
-- rows, a group's existence, DISTINCT).  They are applied as one change.
--
CREATE TABLE sc_t (id int PRIMARY KEY, k int NOT NULL, v int NOT NULL);
CREATE TABLE sc_d (k int PRIMARY KEY, name text NOT NULL);
INSERT INTO sc_d SELECT g, 'd' || g FROM generate_series(0, 6) g;
INSERT INTO sc_t SELECT i, i % 4, i FROM generate_series(1, 12) i;
INSERT INTO sc_t VALUES (50, 5, 1);
-- upstreams: a join (keyed) and a grouped aggregate
SELECT pgtrickle.create_stream_table(name => 'sc_upj',
    query => 'SELECT t.id, t.k, d.name, t.v FROM sc_t t JOIN sc_d d USING (k)', refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table(name => 'sc_upg',
    query => 'SELECT k, sum(v) AS s, count(*) AS n FROM sc_t GROUP BY k', refresh_mode => 'IMMEDIATE');
-- downstreams
SELECT pgtrickle.create_stream_table(name => 'sc_lj_grp',
    query => 'SELECT d.k, count(u.id) AS c, sum(u.v) AS s FROM sc_d d LEFT JOIN sc_upj u USING (k) GROUP BY d.k', refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table(name => 'sc_lj_rows',
    query => 'SELECT d.k, u.id, u.v FROM sc_d d LEFT JOIN sc_upj u USING (k)', refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table(name => 'sc_lj_agg',
    query => 'SELECT d.name, count(g.k) AS c, sum(g.s) AS s FROM sc_d d LEFT JOIN sc_upg g USING (k) GROUP BY d.name', refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table(name => 'sc_dist',
    query => 'SELECT DISTINCT k, v % 2 AS odd FROM sc_upj', refresh_mode => 'IMMEDIATE');
SELECT pgtrickle.create_stream_table(name => 'sc_ij_grp',
    query => 'SELECT d.k, count(u.id) AS c, sum(u.v) AS s FROM sc_d d JOIN sc_upj u USING (k) GROUP BY d.k', refresh_mode => 'IMMEDIATE');
-- a LEFT JOIN over the source itself, written by upserts and MERGE
SELECT pgtrickle.create_stream_table(name => 'sc_lj_src',
    query => 'SELECT d.k, count(t.id) AS c, max(t.v) AS hi FROM sc_d d LEFT JOIN sc_t t USING (k) GROUP BY d.k', refresh_mode => 'IMMEDIATE');
CREATE FUNCTION sc_check() RETURNS TABLE (st text, result text)
LANGUAGE sql AS $$
    SELECT s, pgt_check(s::regclass)
      FROM unnest(ARRAY['sc_upj', 'sc_upg', 'sc_lj_grp', 'sc_lj_rows', 'sc_lj_agg',
                        'sc_dist', 'sc_ij_grp', 'sc_lj_src']) s
$$;
-- the reported shape: a source of the upstream updated
UPDATE sc_t SET v = 0 WHERE id = 50;
SELECT * FROM sc_check();
SELECT k, c, s FROM sc_lj_grp WHERE k = 5;
UPDATE sc_t SET v = v + 1;
SELECT * FROM sc_check();
UPDATE sc_t SET k = 6 WHERE id IN (1, 50);
SELECT * FROM sc_check();
UPDATE sc_d SET name = name || 'x' WHERE k IN (1, 6);
SELECT * FROM sc_check();
DELETE FROM sc_t WHERE k = 3;
INSERT INTO sc_t VALUES (60, 3, 2), (61, 3, 5);
SELECT * FROM sc_check();
-- an upsert: insert and update steps
INSERT INTO sc_t VALUES (60, 4, 9), (70, 4, 1), (71, 0, 3)
    ON CONFLICT (id) DO UPDATE SET k = EXCLUDED.k, v = EXCLUDED.v;
SELECT * FROM sc_check();
-- a MERGE deleting some rows and inserting others of the same groups
MERGE INTO sc_t t
USING (VALUES (60, 4, 0), (61, 3, 0), (80, 3, 7), (81, 2, 8)) AS m(id, k, v) ON t.id = m.id
WHEN MATCHED AND m.v = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET v = m.v
WHEN NOT MATCHED THEN INSERT VALUES (m.id, m.k, m.v);
SELECT * FROM sc_check();
-- in a transaction with a savepoint rolled back in between
BEGIN;
UPDATE sc_t SET v = v * 2 WHERE k = 2;
SAVEPOINT a;
UPDATE sc_t SET k = 1 WHERE k = 2;
ROLLBACK TO SAVEPOINT a;
UPDATE sc_t SET k = 5 WHERE id = 81;
SELECT * FROM sc_check();
COMMIT;
SELECT * FROM sc_check();
SELECT pgtrickle.drop_stream_table(s)
  FROM unnest(ARRAY['sc_lj_grp', 'sc_lj_rows', 'sc_lj_agg', 'sc_dist', 'sc_ij_grp',
                    'sc_lj_src', 'sc_upj', 'sc_upg']) s;
DROP FUNCTION sc_check();
DROP TABLE sc_t, sc_d;

SELECT pgtrickle.drop_stream_table(s) FROM unnest(ARRAY['sf_agg', 'sf_rows', 'sf_dist', 'sf_join']) s;
DROP FUNCTION sf_check(), sf_bump(), sf_prune(), sf_replace(), sf_after_stmt();
DROP TABLE sf_src, sf_dim;
