# pg_trickle — PGXS build.
#
#   make && make install          build and install into the server found by PG_CONFIG
#   make installcheck             regression + isolation + TAP, each on a scratch instance
#                                 (run as a non-root user; see scripts/test.sh)

EXTENSION   = pg_trickle
MODULE_big  = pg_trickle
DATA        = $(wildcard sql/pg_trickle--*.sql)

OBJS = \
	src/pg_trickle.o \
	src/guc.o \
	src/api/lifecycle.o \
	src/api/info.o \
	src/analyze/analyze.o \
	src/catalog/catalog.o \
	src/catalog/ddl.o \
	src/catalog/restore.o \
	src/cdc/cdc.o \
	src/ivm/ivm.o \
	src/ivm/triggers.o \
	src/dvm/aggregate.o \
	src/dvm/apply.o \
	src/dvm/delta.o \
	src/dvm/blocker.o \
	src/dvm/outer_join.o \
	src/dvm/prepare.o \
	src/dvm/recompute.o \
	src/dvm/recursive.o \
	src/dvm/sublink.o \
	src/dvm/sublink_scalar.o \
	src/dvm/lateral.o \
	src/dvm/sqlgen.o \
	src/refresh/refresh.o \
	src/schedule/schedule.o \
	src/scheduler/dag.o \
	src/scheduler/launcher.o \
	src/scheduler/scheduler.o \
	src/scheduler/shmem.o \
	src/scheduler/worker.o \
	src/storage/keep.o \
	src/storage/storage.o \
	src/stream_table.o \
	src/util.o

PG_CPPFLAGS = -I$(srcdir)/include
PG_CFLAGS   = -Wall -Wmissing-prototypes -Wpointer-arith -Wendif-labels \
              -Wformat-security -Wno-format-zero-length

REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=test --temp-instance=tmp_check_regress \
               --temp-config=test/pg_trickle.conf
ISOLATION      = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=output_iso --temp-instance=tmp_check_iso \
                 --temp-config=test/pg_trickle.conf --load-extension=pg_trickle
TAP_TESTS    = 1

EXTRA_CLEAN = test/results test/regression.diffs test/regression.out output_iso tmp_check*

# Prefer PostgreSQL 15's pg_config.  Without the server-dev package PGXS is
# absent; demo/test still work because their scripts install it first.
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
# No JIT bitcode: it needs clang, and stream-table code gains nothing from it.
override with_llvm = no

ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
no-pgxs:
	@echo 'PGXS not found (is postgresql-server-dev-15 installed?).'
	@echo 'Run "make test" or "make demo" (they install what is missing),'
	@echo 'or "scripts/setup.sh" first and then "make".'
	@exit 1
.PHONY: no-pgxs
endif

.PHONY: demo test oracle-long bench
demo:
	scripts/demo.sh
test:
	scripts/test.sh
oracle-long:
	scripts/oracle-long.sh
bench:
	bench/run_issue3.sh
