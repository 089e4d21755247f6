/*
 * lib/px_clock.h - the one clock, deadline and spin toolbox that lib/,
 * ipc/, threadpool/, procpool/ and io/ share. Private: never installed.
 *
 * Time is CLOCK_MONOTONIC nanoseconds in an int64_t. A deadline is an
 * absolute time on that clock; "no deadline" is always PX__NO_DEADLINE
 * (INT64_MAX), never -1 and never 0. A relative timeout is converted once,
 * by px__deadline_after(), which saturates: a timeout too large to add to
 * the clock means "no deadline", so "wait practically forever" can never
 * wrap around into "fail now".
 */
#ifndef PX_CLOCK_H
#define PX_CLOCK_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <parex/common.h>

/* The one value that means "no deadline". */
#define PX__NO_DEADLINE INT64_MAX

/* Monotonic clock in nanoseconds. */
static inline int64_t px__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * PX_SEC + ts.tv_nsec;
}

/*
 * The deadline timeout_ns (>= 0) after the clock reading `start`, saturating:
 * PX__NO_DEADLINE when the sum would not fit. The one place parex adds a
 * timeout to a time.
 */
static inline int64_t px__deadline_add(int64_t start, int64_t timeout_ns)
{
	if (timeout_ns >= PX__NO_DEADLINE - start)
		return PX__NO_DEADLINE;
	return start + timeout_ns;
}

/*
 * The deadline timeout_ns from now. A negative timeout (PX_FOREVER) and one
 * too large to add to the clock both give PX__NO_DEADLINE; 0 gives "now"
 * (already passed: poll once).
 */
static inline int64_t px__deadline_after(int64_t timeout_ns)
{
	if (timeout_ns < 0)
		return PX__NO_DEADLINE;
	return px__deadline_add(px__now_ns(), timeout_ns);
}

/*
 * True when a relative timeout means "no limit": negative (PX_FOREVER) or
 * too large to add to the clock, for callers that keep the timeout relative
 * (a timed lock, a per-task timeout). Reads the clock only for timeouts over
 * INT64_MAX / 2: the monotonic clock stays below that for 146 years.
 */
static inline bool px__timeout_unbounded(int64_t timeout_ns)
{
	return timeout_ns < 0 ||
	       (timeout_ns > INT64_MAX / 2 &&
		px__deadline_after(timeout_ns) == PX__NO_DEADLINE);
}

/* The sooner of two deadlines. */
static inline int64_t px__deadline_min(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* Nanoseconds left until deadline: -1 if there is none, 0 once passed. */
static inline int64_t px__deadline_left(int64_t deadline)
{
	if (deadline == PX__NO_DEADLINE)
		return -1;
	int64_t left = deadline - px__now_ns();

	return left > 0 ? left : 0;
}

/* True once an existing deadline has passed; never for PX__NO_DEADLINE. */
static inline bool px__deadline_passed(int64_t deadline)
{
	return deadline != PX__NO_DEADLINE && px__now_ns() >= deadline;
}

/* One pause of a spin-wait loop. */
static inline void px__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/*
 * A bounded spin before parking. Each px__spin_step() pauses once; every
 * 16 steps it reads the clock, ends the spin after `ns`, and every
 * PX__SPIN_YIELD_NS gives the core away with sched_yield(), so that a
 * spinner never starves the very thread it waits for when both share a
 * core (a 2-vCPU machine with one core busy elsewhere). The spin's end
 * saturates like a deadline: PX__NO_DEADLINE (or any ns too large to add
 * to the clock) spins until the caller stops.
 */
#define PX__SPIN_YIELD_NS 2000
struct px__spin {
	int64_t until, next_yield;
	unsigned i;
};

static inline void px__spin_init(struct px__spin *s, int64_t ns)
{
	int64_t now = px__now_ns();

	s->until = px__deadline_add(now, ns);
	s->next_yield = now + PX__SPIN_YIELD_NS;
	s->i = 0;
}

/* Returns false once the spin's time is up. */
static inline bool px__spin_step(struct px__spin *s)
{
	px__cpu_relax();
	if ((++s->i & 15) == 0) {
		int64_t now = px__now_ns();

		if (now >= s->until)
			return false;
		if (now >= s->next_yield) {
			sched_yield();
			s->next_yield = now + PX__SPIN_YIELD_NS;
		}
	}
	return true;
}

#endif /* PX_CLOCK_H */
