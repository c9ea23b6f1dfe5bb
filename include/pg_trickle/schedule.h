/*-------------------------------------------------------------------------
 * schedule.h
 *	  Parsing and evaluation of stream-table refresh schedules.
 *
 *	  A schedule is one of 'calculated', a duration such as '5m' or
 *	  '1h30m', or a 5- or 6-field cron expression.  See
 *	  src/schedule/schedule.c for the exact grammar.
 *
 * IDENTIFICATION
 *	  include/pg_trickle/schedule.h
 *-------------------------------------------------------------------------
 */
#ifndef PG_TRICKLE_SCHEDULE_H
#define PG_TRICKLE_SCHEDULE_H

#include "datatype/timestamp.h"

typedef enum PgtScheduleKind
{
	PGT_SCHEDULE_CALCULATED,	/* 'calculated' */
	PGT_SCHEDULE_INTERVAL,		/* a duration */
	PGT_SCHEDULE_CRON			/* a cron expression */
} PgtScheduleKind;

typedef struct PgtSchedule
{
	PgtScheduleKind kind;
	int64		interval_seconds;	/* INTERVAL only, > 0 */
	/* CRON only: bit i set = value i allowed */
	uint64		seconds;		/* 0..59; only {0} for 5-field cron */
	uint64		minutes;		/* 0..59 */
	uint32		hours;			/* 0..23 */
	uint32		days_of_month;	/* 1..31 */
	uint32		months;			/* 1..12 */
	uint32		days_of_week;	/* 0..6, 0 = Sunday (7 also accepted =
								 * Sunday) */
	bool		dom_restricted; /* day-of-month field did not start with
								 * '*' */
	bool		dow_restricted; /* day-of-week field did not start with
								 * '*' */
} PgtSchedule;

/*
 * Returns true and fills *out on success; on failure returns false and sets
 * *errdetail to a palloc'd full English sentence (capitalised, ending with a
 * period) describing what is wrong, suitable for errdetail().  Never
 * ereports for bad input.
 */
extern bool pgt_schedule_parse(const char *text, PgtSchedule *out,
							   char **errdetail);

/*
 * Returns the first fire time strictly after `after` for a CRON schedule,
 * evaluated in UTC; for INTERVAL returns after + interval; for CALCULATED
 * returns DT_NOEND.  DT_NOEND is also returned when there is no such time
 * (impossible cron schedule, non-finite `after`, or out of timestamp range).
 */
extern TimestampTz pgt_schedule_next_fire(const PgtSchedule *sched,
										  TimestampTz after);

/*
 * Returns a palloc'd canonical text of the schedule: durations normalized
 * like '90s' -> '1m30s', '3600' -> '1h', 'calculated', or the cron fields
 * joined by single spaces (macros such as @hourly expanded to their 5-field
 * form).  The result parses back to an identical PgtSchedule.
 */
extern char *pgt_schedule_to_text(const PgtSchedule *sched);

#endif							/* PG_TRICKLE_SCHEDULE_H */
