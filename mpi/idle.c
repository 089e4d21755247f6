/*
 * mpi/idle.c - how a px-mpi thread waits between empty polls.
 *
 * The px-mpi threads poll: MPI has no wait that also wakes on a local future
 * or a submit. How they wait between empty polls decides the round trip.
 * After the last message or completion a thread keeps polling for SPIN_NS
 * (px__spin: pauses, the core given away every couple of microseconds so
 * that a local worker sharing it still runs), then sleeps a little longer
 * each empty round: up to 16 us while tasks are out (busy), up to 512 us
 * otherwise. The thread's timer slack is 1 ns (set in startup.c): with the
 * default 50 us a 2 us nanosleep lasts 50 us or more.
 */
#include <time.h>

#include "mpi_internal.h"

#define SPIN_NS 50000

void px__mpi_idle_reset(struct px__mpi_idle *d)
{
	d->spinning = false;
	d->sleeps = 0;
}

static void spin_begin(struct px__mpi_idle *d)
{
	if (!d->spinning && !d->sleeps) {
		px__spin_init(&d->spin, SPIN_NS);
		d->spinning = true;
	}
}

bool px__mpi_idle_spinning(struct px__mpi_idle *d)
{
	spin_begin(d);
	return d->spinning && px__now_ns() < d->spin.until;
}

void px__mpi_idle_wait(struct px__mpi_idle *d, bool busy)
{
	spin_begin(d);
	if (d->spinning) {
		if (px__spin_step(&d->spin))
			return;
		d->spinning = false;
	}
	unsigned max = busy ? 3 : 8;
	long ns = 2000L << (d->sleeps < max ? d->sleeps : max);
	if (d->sleeps < 8)
		d->sleeps++;
	struct timespec ts = { 0, ns };
	nanosleep(&ts, NULL);
}
