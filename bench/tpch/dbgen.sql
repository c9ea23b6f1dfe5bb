-- TPC-H data generator and refresh functions, in SQL.
--
-- tpch_generate(sf, seed) fills the tables of schema.sql following the
-- value rules of the TPC-H specification (clause 4.2.3): table sizes per
-- scale factor, sparse order keys (8 of every 32), customers with
-- custkey % 3 = 0 placing no orders, 4 suppliers per part by the
-- specification's formula, dates between 1992-01-01 and 1998-12-31 with
-- CURRENTDATE 1995-06-17 deciding return flags and line status, prices
-- derived from part prices, order totals and status derived from the
-- lines.  Text columns are random words from a fixed list (the
-- specification's text grammar is not reproduced), with the words the
-- queries look for ("special", "requests", "Customer", "Complaints",
-- colours such as "green" and "forest").
--
-- tpch_rf1() inserts SF * 1500 new orders with their lines, tpch_rf2()
-- deletes as many of the oldest orders with their lines (clause 2.27),
-- tpch_update() changes prices and grouping columns of about 0.1% of the
-- rows of every table.  All are deterministic for a given seed.

CREATE TABLE tpch_state (
    sf        float8 NOT NULL,
    cycle     integer NOT NULL DEFAULT 0,
    next_key  bigint NOT NULL
);

CREATE FUNCTION tpch_words() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
SELECT '{furiously,quickly,carefully,blithely,slyly,fluffily,regular,final,express,ironic,pending,bold,even,special,unusual,silent,requests,deposits,accounts,packages,theodolites,instructions,foxes,pinto,beans,asymptotes,dependencies,excuses,platelets,ideas,sleep,wake,haggle,nag,use,boost,affix,detect,integrate,cajole,across,above,after,along,among,around,against,Customer,Complaints,Recommends}'::text[]
$$;

CREATE FUNCTION tpch_colors() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
SELECT '{almond,antique,aquamarine,azure,beige,bisque,black,blanched,blue,blush,brown,burlywood,burnished,chartreuse,chiffon,chocolate,coral,cornflower,cornsilk,cream,cyan,dark,deep,dim,dodger,drab,firebrick,floral,forest,frosted,gainsboro,ghost,goldenrod,green,grey,honeydew,hot,indian,ivory,khaki,lace,lavender,lawn,lemon,light,lime,linen,magenta,maroon,medium,metallic,midnight,mint,misty,moccasin,navajo,navy,olive,orange,orchid,pale,papaya,peach,peru,pink,plum,powder,puff,purple,red,rose,rosy,royal,saddle,salmon,sandy,seashell,sienna,sky,slate,smoke,snow,spring,steel,tan,thistle,tomato,turquoise,violet,wheat,white,yellow}'::text[]
$$;

-- random words, at most maxlen characters
CREATE FUNCTION tpch_text(maxlen integer) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    w text[] := tpch_words();
    t text := '';
    target integer := greatest(10, (maxlen * (0.3 + 0.7 * random()))::integer);
BEGIN
    WHILE length(t) < target LOOP
        t := t || CASE WHEN t = '' THEN '' ELSE ' ' END || w[1 + floor(random() * (array_length(w, 1) - 3))::integer];
    END LOOP;
    RETURN left(t, maxlen);
END $$;

CREATE FUNCTION tpch_phone(nationkey integer) RETURNS text LANGUAGE sql VOLATILE AS $$
SELECT (nationkey + 10)::text || '-' || (100 + floor(random() * 900))::text || '-'
       || (100 + floor(random() * 900))::text || '-' || (1000 + floor(random() * 9000))::text
$$;

CREATE FUNCTION tpch_pick(a text[]) RETURNS text LANGUAGE sql VOLATILE AS $$
SELECT a[1 + floor(random() * array_length(a, 1))::integer]
$$;

-- the i-th (0..3) supplier of part p among s suppliers (clause 4.2.3)
CREATE FUNCTION tpch_partsupp(p bigint, i integer, s bigint) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
SELECT ((p + (i * ((s / 4) + (p - 1) / s))) % s + 1)::integer
$$;

CREATE FUNCTION tpch_retailprice(p bigint) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
SELECT ((90000 + ((p / 10) % 20001) + 100 * (p % 1000)) / 100.0)::numeric(15,2)
$$;

-- n new orders with their lines, keys first_key, first_key + 1, ... or,
-- sparse, the first 8 of every 32 from there
CREATE FUNCTION tpch_insert_orders(first_key bigint, n bigint, sparse boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    sf float8 := (SELECT sf FROM tpch_state);
    ncust bigint := greatest(1, (sf * 150000)::bigint);
    npart bigint := greatest(1, (sf * 200000)::bigint);
    nsupp bigint := greatest(4, (sf * 10000)::bigint);
    nclerk bigint := greatest(1, (sf * 1000)::bigint);
BEGIN
    CREATE TEMP TABLE tpch_new_orders ON COMMIT DROP AS
    SELECT CASE WHEN sparse THEN ((first_key + k) / 8) * 32 + (first_key + k) % 8 + 1
                ELSE first_key + k END AS okey,
           c AS custkey,
           DATE '1992-01-01' + floor(random() * (DATE '1998-12-31' - 151 - DATE '1992-01-01' + 1))::integer AS odate,
           1 + floor(random() * 7)::integer AS nlines
      FROM (SELECT k, 1 + floor(random() * ncust)::bigint AS c0 FROM generate_series(0, n - 1) k) x,
           LATERAL (SELECT CASE WHEN x.c0 % 3 = 0 THEN greatest(1, x.c0 - 1) ELSE x.c0 END AS c) y;

    INSERT INTO orders
    SELECT okey, custkey, 'O', 0, odate,
           tpch_pick('{1-URGENT,2-HIGH,3-MEDIUM,4-NOT SPECIFIED,5-LOW}'),
           'Clerk#' || lpad((1 + floor(random() * nclerk))::text, 9, '0'),
           0, tpch_text(79)
      FROM tpch_new_orders;

    INSERT INTO lineitem
    SELECT okey, partkey, tpch_partsupp(partkey, floor(random() * 4)::integer, nsupp), ln,
           qty, qty * tpch_retailprice(partkey), disc, tax,
           CASE WHEN shipdate + rcpt <= DATE '1995-06-17' THEN tpch_pick('{R,A}') ELSE 'N' END,
           CASE WHEN shipdate > DATE '1995-06-17' THEN 'O' ELSE 'F' END,
           shipdate, odate + commit, shipdate + rcpt,
           tpch_pick('{DELIVER IN PERSON,COLLECT COD,NONE,TAKE BACK RETURN}'),
           tpch_pick('{REG AIR,AIR,RAIL,SHIP,TRUCK,MAIL,FOB}'),
           tpch_text(44)
      FROM (SELECT o.okey, o.odate, ln,
                   1 + floor(random() * npart)::bigint AS partkey,
                   (1 + floor(random() * 50))::numeric(15,2) AS qty,
                   (floor(random() * 11) / 100.0)::numeric(15,2) AS disc,
                   (floor(random() * 9) / 100.0)::numeric(15,2) AS tax,
                   o.odate + 1 + floor(random() * 121)::integer AS shipdate,
                   30 + floor(random() * 61)::integer AS commit,
                   1 + floor(random() * 30)::integer AS rcpt
              FROM tpch_new_orders o, generate_series(1, o.nlines) ln) l;

    UPDATE orders o SET o_totalprice = t.total, o_orderstatus = t.status
      FROM (SELECT l_orderkey,
                   sum(l_extendedprice * (1 + l_tax) * (1 - l_discount))::numeric(15,2) AS total,
                   CASE WHEN bool_and(l_linestatus = 'F') THEN 'F'
                        WHEN bool_and(l_linestatus = 'O') THEN 'O' ELSE 'P' END AS status
              FROM lineitem JOIN tpch_new_orders ON l_orderkey = okey
             GROUP BY l_orderkey) t
     WHERE o.o_orderkey = t.l_orderkey;
    DROP TABLE tpch_new_orders;
END $$;

CREATE FUNCTION tpch_generate(sf float8, seed float8 DEFAULT 0.5) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    nsupp bigint := greatest(4, (sf * 10000)::bigint);
    npart bigint := greatest(1, (sf * 200000)::bigint);
    ncust bigint := greatest(1, (sf * 150000)::bigint);
    nord bigint := greatest(1, (sf * 1500000)::bigint);
BEGIN
    PERFORM setseed(seed);
    INSERT INTO tpch_state (sf, next_key) VALUES (sf, 0);

    INSERT INTO region VALUES
        (0, 'AFRICA', tpch_text(152)), (1, 'AMERICA', tpch_text(152)), (2, 'ASIA', tpch_text(152)),
        (3, 'EUROPE', tpch_text(152)), (4, 'MIDDLE EAST', tpch_text(152));
    INSERT INTO nation
    SELECT k, name, r, tpch_text(152)
      FROM unnest('{ALGERIA,ARGENTINA,BRAZIL,CANADA,EGYPT,ETHIOPIA,FRANCE,GERMANY,INDIA,INDONESIA,IRAN,IRAQ,JAPAN,JORDAN,KENYA,MOROCCO,MOZAMBIQUE,PERU,CHINA,ROMANIA,SAUDI ARABIA,VIETNAM,RUSSIA,UNITED KINGDOM,UNITED STATES}'::text[],
                  '{0,1,1,1,4,0,3,3,2,2,4,4,2,4,0,0,0,1,2,3,4,2,3,3,1}'::integer[])
           WITH ORDINALITY AS t(name, r, ord)
     CROSS JOIN LATERAL (SELECT (t.ord - 1)::integer AS k) kk;

    INSERT INTO supplier
    SELECT k, 'Supplier#' || lpad(k::text, 9, '0'), tpch_text(40), nk, tpch_phone(nk),
           (-999.99 + floor(random() * 1099999) / 100.0)::numeric(15,2),
           CASE WHEN k % 2000 = 17 THEN left('fluffily Customer even Complaints ' || tpch_text(60), 101)
                WHEN k % 2000 = 1017 THEN left('slyly Customer bold Recommends ' || tpch_text(60), 101)
                ELSE tpch_text(101) END
      FROM (SELECT k, floor(random() * 25)::integer AS nk FROM generate_series(1, nsupp) k) s;

    INSERT INTO part
    SELECT k,
           (SELECT string_agg(c, ' ') FROM (SELECT c FROM unnest(tpch_colors()) c ORDER BY random() + k * 0 LIMIT 5) cc),
           'Manufacturer#' || m, 'Brand#' || m || (1 + floor(random() * 5))::integer,
           tpch_pick('{STANDARD,SMALL,MEDIUM,LARGE,ECONOMY,PROMO}') || ' '
             || tpch_pick('{ANODIZED,BURNISHED,PLATED,POLISHED,BRUSHED}') || ' '
             || tpch_pick('{TIN,NICKEL,BRASS,STEEL,COPPER}'),
           1 + floor(random() * 50)::integer,
           tpch_pick('{SM,LG,MED,JUMBO,WRAP}') || ' ' || tpch_pick('{CASE,BOX,BAG,JAR,PKG,PACK,CAN,DRUM}'),
           tpch_retailprice(k), tpch_text(23)
      FROM (SELECT k, 1 + floor(random() * 5)::integer AS m FROM generate_series(1, npart) k) p;

    INSERT INTO partsupp
    SELECT p, tpch_partsupp(p, i, nsupp), 1 + floor(random() * 9999)::integer,
           (1 + floor(random() * 99901) / 100.0)::numeric(15,2), tpch_text(199)
      FROM generate_series(1, npart) p, generate_series(0, 3) i;

    INSERT INTO customer
    SELECT k, 'Customer#' || lpad(k::text, 9, '0'), tpch_text(40), nk, tpch_phone(nk),
           (-999.99 + floor(random() * 1099999) / 100.0)::numeric(15,2),
           tpch_pick('{AUTOMOBILE,BUILDING,FURNITURE,MACHINERY,HOUSEHOLD}'), tpch_text(117)
      FROM (SELECT k, floor(random() * 25)::integer AS nk FROM generate_series(1, ncust) k) c;

    -- sparse keys: the first 8 of every 32
    PERFORM tpch_insert_orders(0, nord, true);
    UPDATE tpch_state SET next_key = (SELECT max(o_orderkey) FROM orders) + 1;
END $$;

CREATE FUNCTION tpch_rf1() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    st tpch_state := (SELECT s FROM tpch_state s);
    n bigint := greatest(1, (st.sf * 1500)::bigint);
BEGIN
    PERFORM tpch_insert_orders(st.next_key, n, false);
    UPDATE tpch_state SET next_key = next_key + n, cycle = cycle + 1;
END $$;

CREATE FUNCTION tpch_rf2() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n bigint := greatest(1, ((SELECT sf FROM tpch_state) * 1500)::bigint);
BEGIN
    CREATE TEMP TABLE tpch_old ON COMMIT DROP AS
    SELECT o_orderkey AS k FROM orders ORDER BY o_orderkey LIMIT n;
    DELETE FROM lineitem USING tpch_old WHERE l_orderkey = k;
    DELETE FROM orders USING tpch_old WHERE o_orderkey = k;
    DROP TABLE tpch_old;
END $$;

-- about frac of the rows of every table: prices and grouping columns
CREATE FUNCTION tpch_update(frac float8 DEFAULT 0.001) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lineitem SET l_discount = (floor(random() * 11) / 100.0)::numeric(15,2),
                        l_shipmode = tpch_pick('{REG AIR,AIR,RAIL,SHIP,TRUCK,MAIL,FOB}'),
                        l_quantity = 1 + floor(random() * 50)
     WHERE random() < frac;
    UPDATE orders SET o_orderpriority = tpch_pick('{1-URGENT,2-HIGH,3-MEDIUM,4-NOT SPECIFIED,5-LOW}'),
                      o_orderdate = o_orderdate + floor(random() * 20)::integer - 10
     WHERE random() < frac;
    UPDATE part SET p_retailprice = (p_retailprice * (0.9 + random() * 0.2))::numeric(15,2),
                    p_brand = 'Brand#' || (1 + floor(random() * 5))::integer || (1 + floor(random() * 5))::integer,
                    p_container = tpch_pick('{SM,LG,MED,JUMBO,WRAP}') || ' ' || tpch_pick('{CASE,BOX,BAG,JAR,PKG,PACK,CAN,DRUM}')
     WHERE random() < frac * 10;
    UPDATE partsupp SET ps_supplycost = (1 + floor(random() * 99901) / 100.0)::numeric(15,2),
                        ps_availqty = 1 + floor(random() * 9999)::integer
     WHERE random() < frac;
    UPDATE customer SET c_acctbal = (-999.99 + floor(random() * 1099999) / 100.0)::numeric(15,2),
                        c_mktsegment = tpch_pick('{AUTOMOBILE,BUILDING,FURNITURE,MACHINERY,HOUSEHOLD}')
     WHERE random() < frac * 10;
    UPDATE supplier SET s_acctbal = (-999.99 + floor(random() * 1099999) / 100.0)::numeric(15,2),
                        s_nationkey = floor(random() * 25)::integer
     WHERE random() < frac * 10;
END $$;
