/*-------------------------------------------------------------------------
 * schedule.c
 *	  Parsing and evaluation of stream-table refresh schedules.
 *
 *	  A schedule is written in one of three forms.  Matching is
 *	  case-insensitive and surrounding whitespace is ignored.
 *
 *	  'calculated' means the refresh time is derived from downstream
 *	  stream tables; it has no fire time of its own.
 *
 *	  A duration is either a bare positive integer, meaning seconds ('30'),
 *	  or one or more <integer><unit> groups, with units s, m, h, d and w
 *	  (weeks), such as '30s', '5m', '1h30m' or '2h 15m'.  Whitespace may
 *	  separate groups but not a number from its unit.  Groups may appear in
 *	  any order, but each unit at most once ('1h1h' is rejected).  A group
 *	  may be zero ('1h0m') as long as the total is positive.  Fractions,
 *	  signs, multi-letter units and a unit-less number mixed with other
 *	  groups ('1h 30') are rejected.  The total is limited so that it fits
 *	  a TimestampTz in microseconds (PG_INT64_MAX / USECS_PER_SEC seconds).
 *	  The canonical text uses the units d, h, m and s, largest first
 *	  ('90s' -> '1m30s', '1w' -> '7d').
 *
 *	  A cron expression has 5 fields (minute hour day-of-month month
 *	  day-of-week) or 6 fields (second first); the seconds of a 5-field
 *	  expression are {0}.  A field is a comma-separated list of items; an
 *	  item is '*', a value or a range 'a-b', optionally followed by '/n'.
 *	  'a/n' means a through the end of the field in steps of n.  Month names
 *	  JAN..DEC and day names SUN..SAT are accepted in their fields.
 *	  Day-of-week 7 is Sunday, but only when written explicitly: '*' and
 *	  'a/n' end at 6, so '1/2' is MON,WED,FRI.  A range ending in the name
 *	  SUN ('FRI-SUN') ends at 7.  Reversed ranges, steps of zero and steps
 *	  larger than the field's span (60, 24, 31, 12 and 7) are rejected.
 *	  Quartz extensions such as '?', 'L', 'W' and '#' are not supported.
 *	  The macros @yearly, @annually, @monthly, @weekly, @daily, @midnight
 *	  and @hourly expand to their 5-field forms.
 *
 *	  Input that consists of digits, whitespace and duration units only, or
 *	  that does not have 5 or 6 words and starts with a number that has a
 *	  letter or '.' attached, is parsed as a duration; other input with 5
 *	  or 6 words is parsed as cron.  This only matters for the wording of
 *	  error details, since no text is valid in both grammars.
 *
 *	  As in Vixie cron (and pg_cron), a day-of-month or day-of-week field
 *	  whose text starts with '*' counts as unrestricted, even when a step
 *	  follows the '*'.  When both day fields are restricted, a day matches
 *	  if either field matches; otherwise both must match.
 *
 *	  Cron schedules are evaluated in UTC at one-second granularity.  The
 *	  search for the next fire time skips whole months, days, hours and
 *	  minutes that cannot match, and is bounded by 400 years: the Gregorian
 *	  calendar (including weekdays) repeats every 400 years, so a schedule
 *	  that does not fire within that window never fires, such as
 *	  '0 0 31 2 *'.  The search is therefore exact and always terminates.
 *
 *	  pgt_schedule_to_text() produces text that parses back to an identical
 *	  PgtSchedule.
 *
 * IDENTIFICATION
 *	  src/schedule/schedule.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "port/pg_bitutils.h"
#include "utils/datetime.h"

#include "pg_trickle/schedule.h"

/* Years searched by next_fire; the Gregorian calendar repeats every 400. */
#define CRON_SEARCH_YEARS	400

/* Largest duration whose microsecond count fits in an int64. */
#define MAX_INTERVAL_SECONDS	(PG_INT64_MAX / USECS_PER_SEC)

/* Indexes into cron_fields[] */
#define CF_SECOND		0
#define CF_MINUTE		1
#define CF_HOUR			2
#define CF_DOM			3
#define CF_MONTH		4
#define CF_DOW			5
#define CF_COUNT		6

/* Description of one cron field, used for parsing and messages. */
typedef struct CronField
{
	const char *label;			/* field name for messages */
	int			min;			/* smallest accepted value */
	int			max;			/* largest accepted value */
	int			last;			/* end of '*' and 'a/n' ranges */
	const char *const *names;	/* three-letter value names, or NULL */
	int			nnames;			/* number of entries in names */
	int			name_base;		/* value denoted by names[0] */
} CronField;

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec"
};

static const char *const dow_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat"
};

static const CronField cron_fields[CF_COUNT] = {
	{"second", 0, 59, 59, NULL, 0, 0},
	{"minute", 0, 59, 59, NULL, 0, 0},
	{"hour", 0, 23, 23, NULL, 0, 0},
	{"day-of-month", 1, 31, 31, NULL, 0, 0},
	{"month", 1, 12, 12, month_names, 12, 1},
	{"day-of-week", 0, 7, 6, dow_names, 7, 0}
};

/* How append_cron_field may use '*' */
typedef enum StarMode
{
	STAR_EXACT,					/* '*' forms only when exact */
	STAR_REQUIRED,				/* must start with '*' (unrestricted day) */
	STAR_FORBIDDEN				/* must not start with '*' (restricted day) */
} StarMode;

typedef struct CronMacro
{
	const char *name;
	const char *expansion;
} CronMacro;

static const CronMacro cron_macros[] = {
	{"@yearly", "0 0 1 1 *"},
	{"@annually", "0 0 1 1 *"},
	{"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"},
	{"@daily", "0 0 * * *"},
	{"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"}
};

static bool parse_duration(const char *text, PgtSchedule *sched,
						   char **errdetail);
static bool parse_macro(const char *text, PgtSchedule *sched,
						char **errdetail);
static bool parse_cron(const char *text, PgtSchedule *sched,
					   char **errdetail);
static bool parse_cron_field(const char *field, const CronField *cf,
							 uint64 *mask, bool *starred, char **errdetail);
static bool parse_cron_value(const char **pp, const char *field,
							 const CronField *cf, int *value, bool *is_name,
							 char **errdetail);
static bool looks_like_duration(const char *text);
static bool has_digit_then_letter(const char *text);
static int	count_words(const char *text);
static char *unexpected_char(const char *what, char c, const char *text);
static char *cron_unexpected_char(const CronField *cf, const char *field,
								  char c);
static TimestampTz cron_next_fire(const PgtSchedule *sched,
								  TimestampTz after);
static bool cron_day_matches(const PgtSchedule *sched, int year, int month,
							 int day);
static int	next_bit(uint64 mask, int from, int to);
static uint64 step_mask(int lo, int hi, int step);
static void append_duration(StringInfo buf, int64 seconds);
static void append_cron_field(StringInfo buf, uint64 mask, int min, int max,
							  StarMode mode);
static void append_value_list(StringInfo buf, uint64 mask, int min, int max);
static inline bool is_space(char c);
static inline bool is_digit(char c);
static inline bool is_alpha(char c);
static inline bool is_duration_unit(char c);

/*
 * pgt_schedule_parse
 *		Parses a schedule string into *out.
 *
 * Returns true and fills *out on success.  On failure, returns false, leaves
 * *out untouched and sets *errdetail to a palloc'd sentence suitable for
 * errdetail().  Bad input never raises an error.
 */
bool
pgt_schedule_parse(const char *text, PgtSchedule *out, char **errdetail)
{
	PgtSchedule sched;
	const char *start;
	const char *end;
	char	   *trimmed;
	int			nwords;
	bool		ok;

	*errdetail = NULL;
	memset(&sched, 0, sizeof(sched));

	if (text == NULL)
	{
		*errdetail = pstrdup("A schedule must not be null.");
		return false;
	}

	/* Trim surrounding whitespace. */
	start = text;
	while (is_space(*start))
		start++;
	end = start + strlen(start);
	while (end > start && is_space(end[-1]))
		end--;
	trimmed = pnstrdup(start, end - start);

	if (*trimmed == '\0')
	{
		*errdetail = pstrdup("A schedule must not be empty.");
		pfree(trimmed);
		return false;
	}

	nwords = count_words(trimmed);

	if (pg_strcasecmp(trimmed, "calculated") == 0)
	{
		sched.kind = PGT_SCHEDULE_CALCULATED;
		ok = true;
	}
	else if (trimmed[0] == '@')
		ok = parse_macro(trimmed, &sched, errdetail);
	else if (looks_like_duration(trimmed) ||
			 (nwords != 5 && nwords != 6 &&
			  (is_digit(trimmed[0]) || trimmed[0] == '-' ||
			   trimmed[0] == '+' || trimmed[0] == '.') &&
			  has_digit_then_letter(trimmed)))
		ok = parse_duration(trimmed, &sched, errdetail);
	else if (nwords == 5 || nwords == 6)
		ok = parse_cron(trimmed, &sched, errdetail);
	else if (nwords == 1 &&
			 (is_digit(trimmed[0]) || trimmed[0] == '-' ||
			  trimmed[0] == '+' || trimmed[0] == '.'))
		ok = parse_duration(trimmed, &sched, errdetail);
	else if (strpbrk(trimmed, "*,/") != NULL)
		ok = parse_cron(trimmed, &sched, errdetail);
	else
	{
		*errdetail = psprintf("Schedule \"%s\" is not \"calculated\", a "
							  "duration such as \"5m\" or \"1h30m\", or a "
							  "5- or 6-field cron expression.",
							  trimmed);
		ok = false;
	}

	pfree(trimmed);
	if (ok)
		*out = sched;
	return ok;
}

/*
 * pgt_schedule_next_fire
 *		Returns the first fire time of a schedule strictly after "after".
 *
 * For a CRON schedule this is the first matching whole second after
 * "after", evaluated in UTC.  For an INTERVAL schedule it is after plus the
 * interval.  CALCULATED schedules, impossible cron schedules, non-finite
 * input and results beyond the timestamp range yield DT_NOEND.
 */
TimestampTz
pgt_schedule_next_fire(const PgtSchedule *sched, TimestampTz after)
{
	int64		usecs;
	int64		result;

	if (TIMESTAMP_NOT_FINITE(after) || !IS_VALID_TIMESTAMP(after))
		return DT_NOEND;

	switch (sched->kind)
	{
		case PGT_SCHEDULE_CALCULATED:
			return DT_NOEND;

		case PGT_SCHEDULE_INTERVAL:
			if (sched->interval_seconds <= 0 ||
				pg_mul_s64_overflow(sched->interval_seconds, USECS_PER_SEC,
									&usecs) ||
				pg_add_s64_overflow(after, usecs, &result) ||
				!IS_VALID_TIMESTAMP(result))
				return DT_NOEND;
			return result;

		case PGT_SCHEDULE_CRON:
			return cron_next_fire(sched, after);
	}

	elog(ERROR, "unrecognized schedule kind: %d", (int) sched->kind);
	return DT_NOEND;			/* keep compiler quiet */
}

/*
 * pgt_schedule_to_text
 *		Returns the canonical text of a schedule as a palloc'd string.
 *
 * Durations are written with the units d, h, m and s, largest first.  Cron
 * schedules are written as 5 fields when the seconds are {0}, else as 6
 * fields, with names replaced by numbers.  The text parses back to an
 * identical PgtSchedule.
 */
char *
pgt_schedule_to_text(const PgtSchedule *sched)
{
	StringInfoData buf;

	initStringInfo(&buf);

	switch (sched->kind)
	{
		case PGT_SCHEDULE_CALCULATED:
			appendStringInfoString(&buf, "calculated");
			break;

		case PGT_SCHEDULE_INTERVAL:
			append_duration(&buf, sched->interval_seconds);
			break;

		case PGT_SCHEDULE_CRON:
			if (sched->seconds != UINT64CONST(1))
			{
				append_cron_field(&buf, sched->seconds, 0, 59, STAR_EXACT);
				appendStringInfoChar(&buf, ' ');
			}
			append_cron_field(&buf, sched->minutes, 0, 59, STAR_EXACT);
			appendStringInfoChar(&buf, ' ');
			append_cron_field(&buf, sched->hours, 0, 23, STAR_EXACT);
			appendStringInfoChar(&buf, ' ');
			append_cron_field(&buf, sched->days_of_month, 1, 31,
							  sched->dom_restricted ? STAR_FORBIDDEN :
							  STAR_REQUIRED);
			appendStringInfoChar(&buf, ' ');
			append_cron_field(&buf, sched->months, 1, 12, STAR_EXACT);
			appendStringInfoChar(&buf, ' ');
			append_cron_field(&buf, sched->days_of_week, 0, 6,
							  sched->dow_restricted ? STAR_FORBIDDEN :
							  STAR_REQUIRED);
			break;

		default:
			elog(ERROR, "unrecognized schedule kind: %d", (int) sched->kind);
	}

	return buf.data;
}

/*
 * Parses a duration: a bare number of seconds, or <number><unit> groups.
 */
static bool
parse_duration(const char *text, PgtSchedule *sched, char **errdetail)
{
	const char *p = text;
	int64		total = 0;
	int			seen_units = 0;
	int			ngroups = 0;

	if (*p == '-')
	{
		*errdetail = psprintf("Duration \"%s\" is negative; durations must "
							  "be positive.", text);
		return false;
	}

	while (*p != '\0')
	{
		const char *numstart;
		const char *unitstart;
		int64		number = 0;
		int64		multiplier;
		int64		product;
		int			unitbit;
		char		unit;

		if (is_space(*p))
		{
			p++;
			continue;
		}

		if (!is_digit(*p))
		{
			if (*p == '.')
				*errdetail = psprintf("Duration \"%s\" has a fraction; use "
									  "whole numbers of smaller units, such "
									  "as \"1h30m\".", text);
			else if (is_duration_unit(*p))
				*errdetail = psprintf("Unit \"%c\" in duration \"%s\" is not "
									  "preceded by a number.", *p, text);
			else
				*errdetail = unexpected_char("duration", *p, text);
			return false;
		}

		/* Number. */
		numstart = p;
		while (is_digit(*p))
		{
			if (pg_mul_s64_overflow(number, 10, &number) ||
				pg_add_s64_overflow(number, *p - '0', &number) ||
				number > MAX_INTERVAL_SECONDS)
			{
				*errdetail = psprintf("Duration \"%s\" is too large; the "
									  "maximum is " INT64_FORMAT " seconds.",
									  text, MAX_INTERVAL_SECONDS);
				return false;
			}
			p++;
		}

		if (*p == '.')
		{
			*errdetail = psprintf("Duration \"%s\" has a fraction; use whole "
								  "numbers of smaller units, such as "
								  "\"1h30m\".", text);
			return false;
		}

		/* A lone number without unit means seconds. */
		if (*p == '\0' && ngroups == 0)
		{
			total = number;
			break;
		}

		if (!is_alpha(*p))
		{
			if (is_space(*p) || *p == '\0')
				*errdetail = psprintf("Number \"%.*s\" in duration \"%s\" has "
									  "no unit; only a duration consisting "
									  "of a single number may omit the unit.",
									  (int) (p - numstart), numstart, text);
			else
				*errdetail = unexpected_char("duration", *p, text);
			return false;
		}

		/* Unit. */
		unitstart = p;
		while (is_alpha(*p))
			p++;
		unit = pg_ascii_tolower((unsigned char) *unitstart);
		if (p - unitstart != 1 || !is_duration_unit(unit))
		{
			*errdetail = psprintf("Unknown unit \"%.*s\" in duration \"%s\"; "
								  "valid units are s, m, h, d and w.",
								  (int) (p - unitstart), unitstart, text);
			return false;
		}

		switch (unit)
		{
			case 's':
				multiplier = 1;
				unitbit = 1;
				break;
			case 'm':
				multiplier = SECS_PER_MINUTE;
				unitbit = 2;
				break;
			case 'h':
				multiplier = SECS_PER_HOUR;
				unitbit = 4;
				break;
			case 'd':
				multiplier = SECS_PER_DAY;
				unitbit = 8;
				break;
			default:
				multiplier = (int64) SECS_PER_DAY * 7;
				unitbit = 16;
				break;
		}

		if (seen_units & unitbit)
		{
			*errdetail = psprintf("Unit \"%c\" appears more than once in "
								  "duration \"%s\".", *unitstart, text);
			return false;
		}
		seen_units |= unitbit;

		if (pg_mul_s64_overflow(number, multiplier, &product) ||
			pg_add_s64_overflow(total, product, &total) ||
			total > MAX_INTERVAL_SECONDS)
		{
			*errdetail = psprintf("Duration \"%s\" is too large; the maximum "
								  "is " INT64_FORMAT " seconds.",
								  text, MAX_INTERVAL_SECONDS);
			return false;
		}
		ngroups++;
	}

	if (total <= 0)
	{
		*errdetail = psprintf("Duration \"%s\" is zero; durations must be "
							  "positive.", text);
		return false;
	}

	sched->kind = PGT_SCHEDULE_INTERVAL;
	sched->interval_seconds = total;
	return true;
}

/*
 * Expands a cron macro such as @hourly and parses the expansion.
 */
static bool
parse_macro(const char *text, PgtSchedule *sched, char **errdetail)
{
	int			i;

	for (i = 0; i < lengthof(cron_macros); i++)
	{
		if (pg_strcasecmp(text, cron_macros[i].name) == 0)
			return parse_cron(cron_macros[i].expansion, sched, errdetail);
	}

	*errdetail = psprintf("Unknown cron macro \"%s\"; valid macros are "
						  "@yearly, @annually, @monthly, @weekly, @daily, "
						  "@midnight and @hourly.", text);
	return false;
}

/*
 * Parses a 5- or 6-field cron expression.
 */
static bool
parse_cron(const char *text, PgtSchedule *sched, char **errdetail)
{
	char	   *copy = pstrdup(text);
	char	   *words[CF_COUNT];
	uint64		masks[CF_COUNT];
	bool		starred[CF_COUNT];
	int			nwords = count_words(text);
	int			first;
	int			i;
	char	   *p;

	if (nwords != 5 && nwords != 6)
	{
		*errdetail = psprintf("Cron expression \"%s\" has %d field%s; it "
							  "must have 5 (minute hour day-of-month month "
							  "day-of-week) or 6 (with seconds first).",
							  text, nwords, nwords == 1 ? "" : "s");
		pfree(copy);
		return false;
	}

	/* Split the copy into words in place. */
	p = copy;
	for (i = 0; i < nwords; i++)
	{
		while (is_space(*p))
			p++;
		words[i] = p;
		while (*p != '\0' && !is_space(*p))
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}

	/* A 5-field expression has no seconds field; it fires at second 0. */
	first = (nwords == 6) ? CF_SECOND : CF_MINUTE;
	masks[CF_SECOND] = UINT64CONST(1);
	starred[CF_SECOND] = false;

	for (i = 0; i < nwords; i++)
	{
		if (!parse_cron_field(words[i], &cron_fields[first + i],
							  &masks[first + i], &starred[first + i],
							  errdetail))
		{
			pfree(copy);
			return false;
		}
	}
	pfree(copy);

	/* Day-of-week 7 is Sunday. */
	if (masks[CF_DOW] & (UINT64CONST(1) << 7))
	{
		masks[CF_DOW] &= ~(UINT64CONST(1) << 7);
		masks[CF_DOW] |= UINT64CONST(1);
	}

	sched->kind = PGT_SCHEDULE_CRON;
	sched->seconds = masks[CF_SECOND];
	sched->minutes = masks[CF_MINUTE];
	sched->hours = (uint32) masks[CF_HOUR];
	sched->days_of_month = (uint32) masks[CF_DOM];
	sched->months = (uint32) masks[CF_MONTH];
	sched->days_of_week = (uint32) masks[CF_DOW];
	sched->dom_restricted = !starred[CF_DOM];
	sched->dow_restricted = !starred[CF_DOW];
	return true;
}

/*
 * Parses one cron field into a bit mask of allowed values.  *starred is set
 * when the field text starts with '*', which Vixie cron treats as an
 * unrestricted day field.
 */
static bool
parse_cron_field(const char *field, const CronField *cf, uint64 *mask,
				 bool *starred, char **errdetail)
{
	const char *p = field;
	uint64		result = 0;

	*starred = (field[0] == '*');

	for (;;)
	{
		const char *itemstart = p;
		int			lo;
		int			hi;
		int			step = 1;
		bool		is_star = false;
		bool		is_range = false;
		bool		is_name;
		int			v;

		if (*p == ',' || *p == '\0')
		{
			*errdetail = psprintf("The %s field \"%s\" of the cron expression "
								  "contains an empty list item.",
								  cf->label, field);
			return false;
		}

		if (*p == '*')
		{
			lo = cf->min;
			hi = cf->last;
			is_star = true;
			p++;
		}
		else
		{
			if (!parse_cron_value(&p, field, cf, &lo, &is_name, errdetail))
				return false;
			hi = lo;
			if (*p == '-')
			{
				p++;
				if (!parse_cron_value(&p, field, cf, &hi, &is_name,
									  errdetail))
					return false;
				/* 'FRI-SUN' ends at Sunday = 7. */
				if (cf == &cron_fields[CF_DOW] && is_name && hi == 0)
					hi = 7;
				if (lo > hi)
				{
					*errdetail = psprintf("The range \"%.*s\" in the %s field "
										  "of the cron expression is "
										  "reversed; its start must not be "
										  "greater than its end.",
										  (int) (p - itemstart), itemstart,
										  cf->label);
					return false;
				}
				is_range = true;
			}
		}

		if (*p == '/')
		{
			const char *stepstart = ++p;
			int			span = cf->last - cf->min + 1;

			if (!is_digit(*p))
			{
				*errdetail = psprintf("The step in the %s field \"%s\" of the "
									  "cron expression must be a positive "
									  "integer.", cf->label, field);
				return false;
			}
			step = 0;
			while (is_digit(*p))
			{
				if (step <= span)
					step = step * 10 + (*p - '0');
				p++;
			}
			if (step == 0)
			{
				*errdetail = psprintf("The step in the %s field \"%s\" of the "
									  "cron expression is zero; steps must "
									  "be positive.", cf->label, field);
				return false;
			}
			if (step > span)
			{
				*errdetail = psprintf("The step \"%.*s\" in the %s field of "
									  "the cron expression is too large; it "
									  "must be at most %d.",
									  (int) (p - stepstart), stepstart,
									  cf->label, span);
				return false;
			}
			/* 'a/n' means a through the last value in steps of n. */
			if (!is_star && !is_range)
				hi = Max(lo, cf->last);
		}

		if (*p != ',' && *p != '\0')
		{
			*errdetail = cron_unexpected_char(cf, field, *p);
			return false;
		}

		for (v = lo; v <= hi; v += step)
			result |= UINT64CONST(1) << v;

		if (*p == '\0')
			break;
		p++;					/* skip ',' */
	}

	*mask = result;
	return true;
}

/*
 * Parses a number or name at *pp for a cron field and advances *pp past it.
 */
static bool
parse_cron_value(const char **pp, const char *field, const CronField *cf,
				 int *value, bool *is_name, char **errdetail)
{
	const char *p = *pp;
	const char *start = p;

	*is_name = false;

	if (is_digit(*p))
	{
		int			v = 0;

		while (is_digit(*p))
		{
			if (v <= cf->max)
				v = v * 10 + (*p - '0');
			p++;
		}
		if (v < cf->min || v > cf->max)
		{
			*errdetail = psprintf("The value \"%.*s\" in the %s field of the "
								  "cron expression is out of range; it must "
								  "be between %d and %d.",
								  (int) (p - start), start, cf->label,
								  cf->min, cf->max);
			return false;
		}
		*value = v;
	}
	else if (is_alpha(*p))
	{
		int			i;

		while (is_alpha(*p))
			p++;
		if (cf->names == NULL)
		{
			*errdetail = psprintf("The %s field \"%s\" of the cron expression "
								  "contains the name \"%.*s\", but only "
								  "numbers are allowed there.",
								  cf->label, field, (int) (p - start), start);
			return false;
		}
		for (i = 0; i < cf->nnames; i++)
		{
			if (p - start == 3 &&
				pg_strncasecmp(start, cf->names[i], 3) == 0)
				break;
		}
		if (i >= cf->nnames)
		{
			*errdetail = psprintf("The name \"%.*s\" in the %s field of the "
								  "cron expression is not recognized; use "
								  "%s through %s or numbers.",
								  (int) (p - start), start, cf->label,
								  cf->names[0], cf->names[cf->nnames - 1]);
			return false;
		}
		*value = cf->name_base + i;
		*is_name = true;
	}
	else if (*p == '\0' || *p == ',' || *p == '/' || *p == '-')
	{
		*errdetail = psprintf("The %s field \"%s\" of the cron expression is "
							  "missing a value.", cf->label, field);
		return false;
	}
	else
	{
		*errdetail = cron_unexpected_char(cf, field, *p);
		return false;
	}

	*pp = p;
	return true;
}

/*
 * Returns true if text consists only of digits, whitespace and duration
 * unit letters, with at least one unit letter.
 */
static bool
looks_like_duration(const char *text)
{
	bool		has_unit = false;
	const char *p;

	for (p = text; *p != '\0'; p++)
	{
		if (is_duration_unit(*p))
			has_unit = true;
		else if (!is_digit(*p) && !is_space(*p))
			return false;
	}
	return has_unit;
}

/*
 * Returns true if text has a digit immediately followed by a letter or a
 * decimal point, which never occurs in a valid cron expression.
 */
static bool
has_digit_then_letter(const char *text)
{
	const char *p;

	for (p = text; p[0] != '\0' && p[1] != '\0'; p++)
	{
		if (is_digit(p[0]) && (is_alpha(p[1]) || p[1] == '.'))
			return true;
	}
	return false;
}

/*
 * Counts whitespace-separated words.
 */
static int
count_words(const char *text)
{
	int			n = 0;
	bool		in_word = false;
	const char *p;

	for (p = text; *p != '\0'; p++)
	{
		if (is_space(*p))
			in_word = false;
		else if (!in_word)
		{
			in_word = true;
			n++;
		}
	}
	return n;
}

/*
 * Builds a sentence reporting an unexpected character c in text.  Only
 * printable ASCII is quoted, so that the message stays valid in any
 * encoding.
 */
static char *
unexpected_char(const char *what, char c, const char *text)
{
	if ((unsigned char) c >= 0x20 && (unsigned char) c < 0x7f)
		return psprintf("Unexpected character \"%c\" in %s \"%s\".",
						c, what, text);
	return psprintf("Unexpected character in %s \"%s\".", what, text);
}

/*
 * Builds a sentence reporting an unexpected character c in a cron field.
 */
static char *
cron_unexpected_char(const CronField *cf, const char *field, char c)
{
	if ((unsigned char) c >= 0x20 && (unsigned char) c < 0x7f)
		return psprintf("The %s field \"%s\" of the cron expression "
						"contains the unexpected character \"%c\".",
						cf->label, field, c);
	return psprintf("The %s field \"%s\" of the cron expression contains "
					"an unexpected character.", cf->label, field);
}

/*
 * Finds the first second strictly after "after" that matches a cron
 * schedule, or DT_NOEND if there is none.
 */
static TimestampTz
cron_next_fire(const PgtSchedule *sched, TimestampTz after)
{
	int64		secs;
	int64		epoch_days;
	int			secofday;
	int			year;
	int			month;
	int			day;
	int			hour;
	int			minute;
	int			second;
	int			limit_year;
	int			jd;

	/* Give up early on masks that can never match. */
	if ((sched->seconds & step_mask(0, 59, 1)) == 0 ||
		(sched->minutes & step_mask(0, 59, 1)) == 0 ||
		(sched->hours & step_mask(0, 23, 1)) == 0 ||
		(sched->months & step_mask(1, 12, 1)) == 0 ||
		((sched->days_of_month & step_mask(1, 31, 1)) == 0 &&
		 (sched->days_of_week & step_mask(0, 6, 1)) == 0))
		return DT_NOEND;

	/* The smallest whole second strictly after "after". */
	secs = after / USECS_PER_SEC;
	if (after % USECS_PER_SEC < 0)
		secs--;
	secs++;

	epoch_days = secs / SECS_PER_DAY;
	secofday = (int) (secs % SECS_PER_DAY);
	if (secofday < 0)
	{
		secofday += SECS_PER_DAY;
		epoch_days--;
	}
	j2date((int) (epoch_days + POSTGRES_EPOCH_JDATE), &year, &month, &day);
	hour = secofday / SECS_PER_HOUR;
	minute = (secofday % SECS_PER_HOUR) / SECS_PER_MINUTE;
	second = secofday % SECS_PER_MINUTE;

	limit_year = year + CRON_SEARCH_YEARS;

	for (;;)
	{
		int			ndays;
		int			next;

		if (year > limit_year)
			return DT_NOEND;

		/* Month: jump to the next allowed one. */
		if (!(sched->months & (UINT64CONST(1) << month)))
		{
			next = next_bit(sched->months, month + 1, 12);
			if (next < 0)
			{
				year++;
				next = next_bit(sched->months, 1, 12);
			}
			month = next;
			day = 1;
			hour = minute = second = 0;
			continue;
		}

		ndays = day_tab[isleap(year) ? 1 : 0][month - 1];
		if (day > ndays)
		{
			if (++month > MONTHS_PER_YEAR)
			{
				month = 1;
				year++;
			}
			day = 1;
			hour = minute = second = 0;
			continue;
		}

		/*
		 * Day.  Unless either day field may match on its own, the
		 * day-of-month must match, so jump to the next allowed one.
		 */
		if (!(sched->dom_restricted && sched->dow_restricted))
		{
			next = next_bit(sched->days_of_month, day, ndays);
			if (next < 0)
			{
				day = ndays + 1;
				continue;
			}
			if (next != day)
			{
				day = next;
				hour = minute = second = 0;
			}
		}
		if (!cron_day_matches(sched, year, month, day))
		{
			day++;
			hour = minute = second = 0;
			continue;
		}

		/* Hour. */
		next = next_bit(sched->hours, hour, 23);
		if (next < 0)
		{
			day++;
			hour = minute = second = 0;
			continue;
		}
		if (next != hour)
		{
			hour = next;
			minute = second = 0;
		}

		/* Minute. */
		next = next_bit(sched->minutes, minute, 59);
		if (next < 0)
		{
			minute = second = 0;
			if (++hour > 23)
			{
				hour = 0;
				day++;
			}
			continue;
		}
		if (next != minute)
		{
			minute = next;
			second = 0;
		}

		/* Second. */
		next = next_bit(sched->seconds, second, 59);
		if (next < 0)
		{
			second = 0;
			if (++minute > 59)
			{
				minute = 0;
				if (++hour > 23)
				{
					hour = 0;
					day++;
				}
			}
			continue;
		}
		second = next;
		break;
	}

	jd = date2j(year, month, day);
	if (jd >= TIMESTAMP_END_JULIAN)
		return DT_NOEND;

	return (((int64) (jd - POSTGRES_EPOCH_JDATE)) * SECS_PER_DAY +
			hour * SECS_PER_HOUR + minute * SECS_PER_MINUTE + second) *
		USECS_PER_SEC;
}

/*
 * Returns true if the given date matches the day fields of a cron schedule,
 * following Vixie cron: when both day fields are restricted either may
 * match, otherwise both must.
 */
static bool
cron_day_matches(const PgtSchedule *sched, int year, int month, int day)
{
	bool		dom_ok;
	bool		dow_ok;

	dom_ok = (sched->days_of_month & (UINT64CONST(1) << day)) != 0;
	if (!dom_ok && !sched->dom_restricted)
		return false;
	if (dom_ok && sched->dom_restricted && sched->dow_restricted)
		return true;

	dow_ok = (sched->days_of_week &
			  (UINT64CONST(1) << j2day(date2j(year, month, day)))) != 0;

	if (sched->dom_restricted && sched->dow_restricted)
		return dom_ok || dow_ok;
	return dom_ok && dow_ok;
}

/*
 * Returns the smallest value in from..to whose bit is set in mask, or -1.
 */
static int
next_bit(uint64 mask, int from, int to)
{
	if (from < 0)
		from = 0;
	if (to > 63)
		to = 63;
	if (from > to)
		return -1;
	mask &= ~UINT64CONST(0) << from;
	if (to < 63)
		mask &= (UINT64CONST(1) << (to + 1)) - 1;
	if (mask == 0)
		return -1;
	return pg_rightmost_one_pos64(mask);
}

/*
 * Returns the mask of lo, lo + step, ... up to hi (all within 0..63).
 */
static uint64
step_mask(int lo, int hi, int step)
{
	uint64		mask = 0;
	int			v;

	for (v = lo; v <= hi; v += step)
		mask |= UINT64CONST(1) << v;
	return mask;
}

/*
 * Appends a duration in canonical form, such as '1d2h3m4s'.
 */
static void
append_duration(StringInfo buf, int64 seconds)
{
	static const struct
	{
		int64		size;
		char		unit;
	}			units[] = {
		{SECS_PER_DAY, 'd'},
		{SECS_PER_HOUR, 'h'},
		{SECS_PER_MINUTE, 'm'},
		{1, 's'}
	};
	int			i;

	for (i = 0; i < lengthof(units); i++)
	{
		int64		n = seconds / units[i].size;

		if (n > 0)
		{
			appendStringInfo(buf, INT64_FORMAT "%c", n, units[i].unit);
			seconds -= n * units[i].size;
		}
	}
}

/*
 * Appends one cron field in canonical form.  Values outside min..max are
 * ignored.  Whether a day field starts with '*' changes its meaning, so
 * mode says whether the text must (STAR_REQUIRED) or must not
 * (STAR_FORBIDDEN) start with '*'; other fields (STAR_EXACT) use '*' forms
 * only when they describe the mask exactly.
 */
static void
append_cron_field(StringInfo buf, uint64 mask, int min, int max,
				  StarMode mode)
{
	uint64		full = step_mask(min, max, 1);
	int			span = max - min + 1;
	int			step;

	mask &= full;

	if (mode != STAR_FORBIDDEN)
	{
		if (mask == full)
		{
			appendStringInfoChar(buf, '*');
			return;
		}

		/*
		 * '*' with a step, when that describes the mask exactly.  Outside
		 * day fields a single value is clearer written as itself.
		 */
		for (step = 2; step < (mode == STAR_REQUIRED ? span + 1 : span);
			 step++)
		{
			if (mask == step_mask(min, max, step))
			{
				appendStringInfo(buf, "*/%d", step);
				return;
			}
		}
	}

	/*
	 * An unrestricted day field must start with '*': lead with the densest
	 * '*' step pattern contained in the mask (at worst a step equal to the
	 * span, which is {min}) and list the remaining values after it.  A
	 * parsed field starting with '*' always contains min.
	 */
	if (mode == STAR_REQUIRED && (mask & (UINT64CONST(1) << min)))
	{
		for (step = 2; step < span; step++)
		{
			if ((step_mask(min, max, step) & ~mask) == 0)
				break;
		}
		appendStringInfo(buf, "*/%d,", step);
		mask &= ~step_mask(min, max, step);
	}

	append_value_list(buf, mask, min, max);
}

/*
 * Appends a non-empty mask as 'a-b/n' when it is an arithmetic progression
 * of at least three values, or else as a list of values and ranges.
 */
static void
append_value_list(StringInfo buf, uint64 mask, int min, int max)
{
	int			values[64];
	int			n = 0;
	int			v;
	int			i;
	bool		progression;

	for (v = min; v <= max; v++)
	{
		if (mask & (UINT64CONST(1) << v))
			values[n++] = v;
	}

	if (n == 0)
	{
		/* Cannot happen for a parsed schedule; write something parsable. */
		appendStringInfo(buf, "%d", min);
		return;
	}

	progression = (n >= 3 && values[1] - values[0] >= 2);
	for (i = 2; progression && i < n; i++)
	{
		if (values[i] - values[i - 1] != values[1] - values[0])
			progression = false;
	}
	if (progression)
	{
		appendStringInfo(buf, "%d-%d/%d", values[0], values[n - 1],
						 values[1] - values[0]);
		return;
	}

	for (i = 0; i < n;)
	{
		int			j = i;

		while (j + 1 < n && values[j + 1] == values[j] + 1)
			j++;
		if (i > 0)
			appendStringInfoChar(buf, ',');
		if (j - i >= 2)
		{
			appendStringInfo(buf, "%d-%d", values[i], values[j]);
			i = j + 1;
		}
		else
		{
			appendStringInfo(buf, "%d", values[i]);
			i++;
		}
	}
}

/*
 * Character classes for the ASCII-only schedule grammar.
 */
static inline bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		c == '\f' || c == '\v';
}

static inline bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool
is_duration_unit(char c)
{
	c = pg_ascii_tolower((unsigned char) c);
	return c == 's' || c == 'm' || c == 'h' || c == 'd' || c == 'w';
}
