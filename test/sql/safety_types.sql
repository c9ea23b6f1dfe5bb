--
-- safety_types: column types whose equality (and hashing, ordering) lives
-- outside pg_catalog -- contrib citext (and a domain over it), ltree, cube,
-- isn, and a user-defined type with its own "=" in a user schema.  The
-- generated delta and apply SQL must compare with the operator the query's
-- own GROUP BY, DISTINCT or join uses, never with one the search_path finds
-- (issue 12, items 6 and 10(b)).  After changes, every stream table must
-- equal a fresh run of its query, compared with the types' own equality
-- (EXCEPT ALL both ways: DISTINCT over citext may keep any spelling of a
-- value, but exactly one).
--
\set VERBOSITY terse

CREATE EXTENSION citext;
CREATE EXTENSION ltree;
CREATE EXTENSION cube;
CREATE EXTENSION isn;

-- rows of st not in query q, and rows of q not in st, compared by each
-- column type's own equality
CREATE FUNCTION ty_check_q(st regclass, q text) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    cols   text;
    extra  bigint;
    miss   bigint;
BEGIN
    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) INTO cols
      FROM pg_attribute a
     WHERE a.attrelid = st AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname NOT LIKE '\_\_pgt\_%';
    EXECUTE format('SELECT count(*) FROM (SELECT %s FROM %s EXCEPT ALL SELECT * FROM (%s) q) d',
                   cols, st, q) INTO extra;
    EXECUTE format('SELECT count(*) FROM (SELECT * FROM (%s) q EXCEPT ALL SELECT %s FROM %s) d',
                   q, cols, st) INTO miss;
    IF extra = 0 AND miss = 0 THEN
        RETURN 'ok';
    END IF;
    RETURN format('%s: %s extra, %s missing', st, extra, miss);
END
$fn$;
-- st against its stored defining query
CREATE FUNCTION ty_check(st regclass) RETURNS text
LANGUAGE sql AS $fn$
    SELECT ty_check_q(st, s.defining_query)
      FROM pgtrickle.pgt_stream_tables s WHERE s.pgt_relid = st
$fn$;

-- refreshes every non-IMMEDIATE ty_ stream table and checks them all;
-- action is what the refresh did (IMMEDIATE: maintained by the writes)
CREATE FUNCTION ty_refresh_check() RETURNS TABLE (st text, action text, verdict text)
LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT s.pgt_id, s.pgt_relid, s.pgt_name, s.refresh_mode
               FROM pgtrickle.pgt_stream_tables s
              WHERE s.pgt_name LIKE 'ty\_%' ORDER BY s.pgt_name
    LOOP
        st := r.pgt_name;
        action := r.refresh_mode;
        BEGIN
            IF r.refresh_mode <> 'IMMEDIATE' THEN
                PERFORM pgtrickle.refresh_stream_table(r.pgt_name);
                SELECT h.action INTO action FROM pgtrickle.pgt_refresh_history h
                 WHERE h.pgt_id = r.pgt_id ORDER BY h.refresh_id DESC LIMIT 1;
            END IF;
            verdict := ty_check(r.pgt_relid);
        EXCEPTION WHEN OTHERS THEN
            verdict := format('%s: %s', SQLSTATE, SQLERRM);
        END;
        RETURN NEXT;
    END LOOP;
END
$fn$;

-- the statement on its own: an error is shown as its SQLSTATE and message
CREATE FUNCTION ty_dml(sql text) RETURNS text
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN format('%s: %s', SQLSTATE, SQLERRM);
END
$fn$;

----------------------------------------------------------------------------
-- citext, and a domain over it
----------------------------------------------------------------------------
CREATE DOMAIN ty_cidom AS citext;
CREATE TABLE ty_ci (id int PRIMARY KEY, name citext, dom ty_cidom, g int);
CREATE TABLE ty_ci2 (id int PRIMARY KEY, name citext NOT NULL);
INSERT INTO ty_ci VALUES (1, 'Alice', 'Alice', 1), (2, 'ALICE', 'ALICE', 2),
                         (3, 'bob', 'bob', 3), (4, NULL, NULL, 4);
INSERT INTO ty_ci2 VALUES (1, 'alice'), (2, 'BOB'), (3, 'carol');

SELECT m, pgtrickle.create_stream_table(format('ty_ci_distinct_%s', lower(m)),
           'SELECT DISTINCT name FROM ty_ci', refresh_mode => m)
  FROM unnest(ARRAY['DIFFERENTIAL', 'IMMEDIATE', 'FULL', 'AUTO']) m;
SELECT m, pgtrickle.create_stream_table(format('ty_ci_group_%s', lower(m)),
           'SELECT name, count(*) AS n, sum(g) AS s FROM ty_ci GROUP BY name', refresh_mode => m)
  FROM unnest(ARRAY['DIFFERENTIAL', 'IMMEDIATE']) m;
SELECT m, pgtrickle.create_stream_table(format('ty_ci_join_%s', lower(m)),
           'SELECT a.id, b.id AS bid, b.name FROM ty_ci a JOIN ty_ci2 b ON a.name = b.name',
           refresh_mode => m)
  FROM unnest(ARRAY['DIFFERENTIAL', 'IMMEDIATE']) m;
SELECT m, pgtrickle.create_stream_table(format('ty_ci_dom_%s', lower(m)),
           'SELECT dom, count(*) AS n FROM ty_ci GROUP BY dom', refresh_mode => m)
  FROM unnest(ARRAY['DIFFERENTIAL', 'IMMEDIATE']) m;
SELECT m, pgtrickle.create_stream_table(format('ty_ci_domdistinct_%s', lower(m)),
           'SELECT DISTINCT dom FROM ty_ci', refresh_mode => m)
  FROM unnest(ARRAY['DIFFERENTIAL', 'IMMEDIATE']) m;
-- subqueries rewritten through min() and max(): citext's own, which the
-- locked search_path does not show
SELECT k, m, pgtrickle.create_stream_table(format('ty_ci_%s_%s', k, lower(m)), q, refresh_mode => m)
  FROM unnest(ARRAY['DIFFERENTIAL', 'IMMEDIATE']) m,
       (VALUES ('all', 'SELECT id, name FROM ty_ci WHERE name > ALL (SELECT name FROM ty_ci2)'),
               ('ne', 'SELECT id, name FROM ty_ci a WHERE NOT EXISTS
                         (SELECT 1 FROM ty_ci2 b WHERE b.id = a.g AND b.name <> a.name)'),
               ('in', 'SELECT id, name FROM ty_ci WHERE name IN (SELECT name FROM ty_ci2)')) AS s(k, q)
 ORDER BY k, m;

-- the group key is stored once per group, whatever its spelling
SELECT name, n, s FROM ty_ci_group_immediate ORDER BY name;

-- deleting the spelling that was kept: the group still exists as ALICE
DELETE FROM ty_ci WHERE id = 1;
SELECT * FROM ty_refresh_check();
SELECT count(*) AS alice_rows FROM ty_ci_distinct_differential WHERE name = 'alice';
SELECT count(*) AS alice_rows FROM ty_ci_distinct_immediate WHERE name = 'alice';

-- IMMEDIATE: another spelling of an existing group joins that group
SELECT ty_dml($$INSERT INTO ty_ci VALUES (5, 'BOB', 'BoB', 5)$$);
SELECT name, n, s FROM ty_ci_group_immediate ORDER BY name;
SELECT * FROM ty_refresh_check();

-- random-ish changes: spellings of few names, key changes, NULLs
SELECT setseed(0.12);
SELECT ty_dml(format($$INSERT INTO ty_ci SELECT i, v, v, i %% 7 FROM (
           SELECT i, (ARRAY['alice', 'Alice', 'BOB', 'Carol', 'carol', NULL])[1 + (random() * 5)::int] AS v
             FROM generate_series(10, 40) i) x$$));
SELECT * FROM ty_refresh_check();
SELECT ty_dml($$UPDATE ty_ci SET name = upper(name::text), dom = lower(dom::text) WHERE id % 3 = 0$$);
SELECT ty_dml($$DELETE FROM ty_ci WHERE id % 4 = 1$$);
SELECT ty_dml($$UPDATE ty_ci2 SET name = 'ALICE' WHERE id = 1$$);
SELECT ty_dml($$INSERT INTO ty_ci2 VALUES (4, 'Carol'), (5, 'CAROL'), (6, 'zed')$$);
SELECT ty_dml($$UPDATE ty_ci SET name = 'ZED', g = 6 WHERE id % 7 = 3$$);
SELECT * FROM ty_refresh_check();
SELECT ty_dml($$UPDATE ty_ci SET name = NULL, dom = NULL WHERE id % 5 = 0$$);
SELECT ty_dml($$UPDATE ty_ci SET name = 'ALICE', dom = 'aLiCe' WHERE id % 6 = 2$$);
SELECT ty_dml($$DELETE FROM ty_ci2 WHERE id = 2$$);
SELECT ty_dml($$UPDATE ty_ci2 SET name = 'Zed' WHERE id = 6$$);
-- 'Zoe' sorts after 'zed' as citext (not as text)
SELECT ty_dml($$INSERT INTO ty_ci VALUES (50, 'Zoe', 'Zoe', 6), (51, 'ZED', 'ZED', 6)$$);
SELECT * FROM ty_refresh_check();
SELECT id, name FROM ty_ci_all_differential ORDER BY id;
SELECT id, name FROM ty_ci_all_immediate ORDER BY id;

----------------------------------------------------------------------------
-- ltree, cube, isn, and a user-defined type with its own "=" in a user
-- schema (an int8-like type whose operators are int8's functions; a hash
-- operator class without an extended hash function)
----------------------------------------------------------------------------
CREATE SCHEMA ty_s;
CREATE TYPE ty_s.code;
CREATE FUNCTION ty_s.code_in(cstring) RETURNS ty_s.code LANGUAGE internal IMMUTABLE STRICT AS 'int8in';
CREATE FUNCTION ty_s.code_out(ty_s.code) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'int8out';
CREATE TYPE ty_s.code (INPUT = ty_s.code_in, OUTPUT = ty_s.code_out, LIKE = pg_catalog.int8);
CREATE FUNCTION ty_s.code_eq(ty_s.code, ty_s.code) RETURNS bool LANGUAGE internal IMMUTABLE STRICT AS 'int8eq';
CREATE FUNCTION ty_s.code_ne(ty_s.code, ty_s.code) RETURNS bool LANGUAGE internal IMMUTABLE STRICT AS 'int8ne';
CREATE FUNCTION ty_s.code_lt(ty_s.code, ty_s.code) RETURNS bool LANGUAGE internal IMMUTABLE STRICT AS 'int8lt';
CREATE FUNCTION ty_s.code_le(ty_s.code, ty_s.code) RETURNS bool LANGUAGE internal IMMUTABLE STRICT AS 'int8le';
CREATE FUNCTION ty_s.code_gt(ty_s.code, ty_s.code) RETURNS bool LANGUAGE internal IMMUTABLE STRICT AS 'int8gt';
CREATE FUNCTION ty_s.code_ge(ty_s.code, ty_s.code) RETURNS bool LANGUAGE internal IMMUTABLE STRICT AS 'int8ge';
CREATE FUNCTION ty_s.code_cmp(ty_s.code, ty_s.code) RETURNS int4 LANGUAGE internal IMMUTABLE STRICT AS 'btint8cmp';
CREATE FUNCTION ty_s.code_hash(ty_s.code) RETURNS int4 LANGUAGE internal IMMUTABLE STRICT AS 'hashint8';
CREATE OPERATOR ty_s.= (LEFTARG = ty_s.code, RIGHTARG = ty_s.code, FUNCTION = ty_s.code_eq,
                        COMMUTATOR = OPERATOR(ty_s.=), NEGATOR = OPERATOR(ty_s.<>),
                        RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR ty_s.<> (LEFTARG = ty_s.code, RIGHTARG = ty_s.code, FUNCTION = ty_s.code_ne);
CREATE OPERATOR ty_s.< (LEFTARG = ty_s.code, RIGHTARG = ty_s.code, FUNCTION = ty_s.code_lt);
CREATE OPERATOR ty_s.<= (LEFTARG = ty_s.code, RIGHTARG = ty_s.code, FUNCTION = ty_s.code_le);
CREATE OPERATOR ty_s.> (LEFTARG = ty_s.code, RIGHTARG = ty_s.code, FUNCTION = ty_s.code_gt);
CREATE OPERATOR ty_s.>= (LEFTARG = ty_s.code, RIGHTARG = ty_s.code, FUNCTION = ty_s.code_ge);
CREATE OPERATOR CLASS ty_s.code_ops DEFAULT FOR TYPE ty_s.code USING btree AS
    OPERATOR 1 ty_s.<, OPERATOR 2 ty_s.<=, OPERATOR 3 ty_s.=, OPERATOR 4 ty_s.>=,
    OPERATOR 5 ty_s.>, FUNCTION 1 ty_s.code_cmp(ty_s.code, ty_s.code);
CREATE OPERATOR CLASS ty_s.code_hash_ops DEFAULT FOR TYPE ty_s.code USING hash AS
    OPERATOR 1 ty_s.=, FUNCTION 1 ty_s.code_hash(ty_s.code);

-- DIFFERENTIAL stream tables read ty_ex and ty_ex2, IMMEDIATE ones the
-- same tables named ty_im and ty_im2 (so that a failing IMMEDIATE
-- maintenance cannot hide what a refresh does); ty_dml2 runs each change
-- on both
CREATE FUNCTION ty_dml2(sql text) RETURNS text
LANGUAGE sql AS $fn$
    SELECT format('ty_ex: %s, ty_im: %s', ty_dml(sql), ty_dml(replace(sql, 'ty_ex', 'ty_im')))
$fn$;
CREATE TABLE ty_ex (id int PRIMARY KEY, p ltree, c cube, e ean13, u ty_s.code, v int);
CREATE TABLE ty_ex2 (id int PRIMARY KEY, p ltree, u ty_s.code);
CREATE TABLE ty_im (LIKE ty_ex INCLUDING ALL);
CREATE TABLE ty_im2 (LIKE ty_ex2 INCLUDING ALL);
SELECT ty_dml2($$INSERT INTO ty_ex VALUES
    (1, 'top.a', '(1, 2)', '9780123456786', '7', 1),
    (2, 'top.b', '(0)', '9780201633610', '8', 2),
    (3, 'top.a', '(1, 2)', '9780123456786', '7', 3),
    (4, NULL, NULL, NULL, NULL, 4)$$);
SELECT ty_dml2($$INSERT INTO ty_ex2 VALUES (1, 'top.a', '7'), (2, 'top.c', '9')$$);

-- the type's operators are found on the search_path, as its users would have it
SET search_path = public, ty_s;
SELECT k, m, pgtrickle.create_stream_table(format('ty_ex_%s_%s', k, lower(m)),
           CASE m WHEN 'IMMEDIATE' THEN replace(q, 'ty_ex', 'ty_im') ELSE q END,
           refresh_mode => m)
  FROM unnest(ARRAY['DIFFERENTIAL', 'IMMEDIATE']) m,
       (VALUES ('ltree', 'SELECT p, count(*) AS n, sum(v) AS s FROM ty_ex GROUP BY p'),
               ('cube', 'SELECT DISTINCT c FROM ty_ex'),
               ('cubegroup', 'SELECT c, count(*) AS n FROM ty_ex GROUP BY c'),
               ('isn', 'SELECT e, count(*) AS n, max(v) AS mx FROM ty_ex GROUP BY e'),
               ('udt', 'SELECT u, count(*) AS n FROM ty_ex GROUP BY u'),
               ('udtdistinct', 'SELECT DISTINCT u FROM ty_ex'),
               ('ljoin', 'SELECT a.id, b.id AS bid, a.p FROM ty_ex a JOIN ty_ex2 b ON a.p = b.p'),
               ('ujoin', 'SELECT a.id, b.id AS bid, b.u FROM ty_ex a JOIN ty_ex2 b ON a.u = b.u'),
               ('rows', 'SELECT p, c, e, u FROM ty_ex WHERE v > 1')) AS s(k, q)
 ORDER BY k, m;
RESET search_path;

-- the statements that failed with 42883 operator does not exist
SELECT ty_dml2($$INSERT INTO ty_ex VALUES (5, 'top.b', '(0)', '9780201633610', '8', 5)$$);
SELECT ty_dml2($$UPDATE ty_ex SET v = v + 10 WHERE id = 1$$);
SELECT ty_dml2($$DELETE FROM ty_ex WHERE id = 2$$);
SELECT * FROM ty_refresh_check();

-- cube: -0 equals 0 but prints differently; one group, one DISTINCT row
SELECT ty_dml2($$INSERT INTO ty_ex VALUES (6, 'top.b', '(-0)', '978-0-201-63361-0', '8', 6)$$);
SELECT c, n FROM ty_ex_cubegroup_immediate ORDER BY c;
SELECT * FROM ty_refresh_check();

-- random-ish changes
SELECT setseed(0.34);
SELECT ty_dml2($$INSERT INTO ty_ex SELECT i,
           (ARRAY['top.a', 'top.b', 'top.a.x', NULL])[1 + (random() * 3)::int]::ltree,
           (ARRAY['(1, 2)', '(0)', '(-0)', '(1, 2),(3, 4)', NULL])[1 + (random() * 4)::int]::cube,
           (ARRAY['9780123456786', '9780201633610', NULL])[1 + (random() * 2)::int]::ean13,
           (ARRAY['7', '8', '9', NULL])[1 + (random() * 3)::int]::ty_s.code,
           i % 9
         FROM generate_series(10, 40) i$$);
SELECT * FROM ty_refresh_check();
SELECT ty_dml2($$UPDATE ty_ex SET p = 'top.c', u = '9' WHERE id % 3 = 0$$);
SELECT ty_dml2($$UPDATE ty_ex SET c = '(-0)', e = NULL WHERE id % 4 = 1$$);
SELECT ty_dml2($$DELETE FROM ty_ex WHERE id % 5 = 2$$);
SELECT ty_dml2($$UPDATE ty_ex2 SET p = 'top.b', u = '8' WHERE id = 2$$);
SELECT * FROM ty_refresh_check();


----------------------------------------------------------------------------
-- expressions the deparser prints without their operator: IS DISTINCT FROM,
-- NULLIF, simple CASE.  The stored definition must keep citext's and
-- ltree's "=" (before: citext compared as text, even in FULL mode; ltree
-- failed with 42883).  Checked against the query as written.
----------------------------------------------------------------------------
CREATE TABLE ty_q (k text PRIMARY KEY, q text);
INSERT INTO ty_q VALUES
    ('distinct', $$SELECT id FROM ty_ci WHERE name IS DISTINCT FROM 'alice'$$),
    ('nullif', $$SELECT id, NULLIF(name, 'alice') AS x FROM ty_ci$$),
    ('case', $$SELECT id, CASE dom WHEN 'alice' THEN 1 WHEN 'bob' THEN 2 ELSE 0 END AS x FROM ty_ci$$),
    ('ltree', $$SELECT id FROM ty_ex WHERE p IS DISTINCT FROM 'top.a'$$);
SELECT k, m, ty_dml(format('SELECT pgtrickle.create_stream_table(%L, %L, refresh_mode => %L)',
                            format('ty_op_%s_%s', k, lower(m)),
                            CASE m WHEN 'IMMEDIATE' THEN replace(q, 'ty_ex', 'ty_im') ELSE q END, m))
  FROM ty_q, unnest(ARRAY['FULL', 'DIFFERENTIAL', 'IMMEDIATE']) m
 ORDER BY k, m;
SELECT defining_query FROM pgtrickle.pgt_stream_tables WHERE pgt_name = 'ty_op_case_full';

CREATE FUNCTION ty_op_check() RETURNS TABLE (st text, verdict text)
LANGUAGE sql AS $fn$
    SELECT s.pgt_name,
           ty_check_q(s.pgt_relid,
                      CASE s.refresh_mode WHEN 'IMMEDIATE' THEN replace(q.q, 'ty_ex', 'ty_im') ELSE q.q END)
      FROM pgtrickle.pgt_stream_tables s
      JOIN ty_q q ON s.pgt_name LIKE 'ty\_op\_' || q.k || '\_%'
     ORDER BY 1
$fn$;
SELECT ty_dml($$INSERT INTO ty_ci VALUES (60, 'ALICE', 'Bob', 1), (61, 'BOB', 'ALICE', 2), (62, NULL, NULL, 3)$$);
SELECT ty_dml2($$INSERT INTO ty_ex VALUES (60, 'top.a', NULL, NULL, NULL, 1), (61, 'top.A', NULL, NULL, NULL, 2)$$);
SELECT * FROM ty_refresh_check() WHERE st LIKE 'ty\_op\_%';
SELECT * FROM ty_op_check();
SELECT ty_dml($$UPDATE ty_ci SET name = 'aLiCe', dom = 'bOB' WHERE id % 4 = 0$$);
SELECT ty_dml2($$UPDATE ty_ex SET p = 'top.a' WHERE id % 3 = 1$$);
SELECT ty_dml($$DELETE FROM ty_ci WHERE id = 60$$);
SELECT * FROM ty_refresh_check() WHERE st LIKE 'ty\_op\_%';
SELECT * FROM ty_op_check();
