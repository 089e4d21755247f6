/*
 * procpool/shared.h - what lives in the process pool's shared mapping: the
 * only structures a worker process touches. Private: never installed.
 *
 * Every shared structure of one pool lives in one MAP_SHARED|MAP_ANONYMOUS
 * mapping made before the fork server is forked. fork() keeps addresses, so
 * the parent, the fork server and every worker see the mapping at the same
 * address, and these structures may hold plain pointers into it (unlike ipc/
 * segments, which unrelated processes map anywhere). The mapping holds the
 * doorbell header (struct pp_hdr), then for each worker slot its struct
 * pp_wshared, request ring, response ring and large-reply areas, then the
 * arena (arena.h).
 *
 * Task records (one per in-flight task, indexed by seq % PP_WINDOW in the
 * worker's table) carry a state word, seq << 3 | state, that decides races
 * between the worker and the parent with one CAS each:
 *   worker:  QUEUED -> RUNNING (start), RUNNING -> DONE (finish);
 *   parent:  QUEUED -> CANCELLED (withdraw: the worker skips it),
 *            RUNNING -> KILLING (timeout or cancel: the worker is killed; if
 *            it finishes first its RUNNING -> DONE fails and it waits for the
 *            kill without reporting),
 *            RUNNING -> CANCELREQ (cancel with a grace period: the task sees
 *            it through px_task_cancelled()), CANCELREQ -> KILLING (the grace
 *            period is over);
 *   worker:  CANCELREQ -> DONE (it returned within the grace period: it
 *            replies -ECANCELED and goes on with its next task).
 *
 * Memory-order pairings on these words:
 *  - rings: see ipc/ring.c (a push's release pairs with the pop's acquire),
 *    which also publishes the record word and big area written before it.
 *  - record word: the worker's acq_rel CAS to RUNNING (after storing
 *    start_ns) pairs with the collector's acquire load before it reads
 *    start_ns; the parent's CASes are acq_rel against the worker's.
 *    end_ns (traced tasks) is stored before the CAS to DONE and reaches the
 *    collector with the reply (the ring push's release); a dead worker's
 *    start_ns through the acquire load of the word in retire_window().
 *  - doorbell: Dekker pair of the ringer's seq_cst fence (after publishing)
 *    and the collector's seq_cst fence (after setting bell_sleeping), see
 *    px__pp_bell_ring() (shared.c) and park() (collector.c).
 *  - big area: the collector's release store of big_busy = 0 (after copying
 *    out) pairs with the worker's acquire load before it writes the area
 *    again; waiters use the same Dekker shape on big_waiters.
 *  - worker state (READY, INITFAIL, EXITING): release store by the worker,
 *    acquire load by the collector.
 *
 * Nothing here may be trusted by the parent beyond what it checks: a task
 * runs arbitrary code in the worker and can scribble over its slot.
 */
#ifndef PX_PROCPOOL_SHARED_H
#define PX_PROCPOOL_SHARED_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <parex/executor.h>
#include <parex/ring.h>


#define PP_WINDOW 64        /* tasks in flight per worker (ring capacity) */
#define PP_REQ_SLOT 128
#define PP_REQ_INLINE 80    /* argument bytes carried in the request slot */
#define PP_RESP_SLOT 64
#define PP_RESP_INLINE 32   /* result bytes carried in the response slot */
#define PP_MSG_MAX 512
#define PP_NBIG 4           /* large-reply areas per worker, used in turn */

/* Record states, low 3 bits of the record word. */
enum { R_FREE = 0, R_QUEUED, R_RUNNING, R_DONE, R_CANCELLED, R_KILLING,
       R_CANCELREQ };

/* pp_wshared.helper: nobody watches the reply ring, a waiting thread
 * spins on it, or sleeps on hseq. */
enum { HELP_NONE = 0, HELP_SPIN, HELP_ASLEEP };

/* Worker lifecycle, written by the worker into its shared slot. */
enum { WS_NONE = 0, WS_STARTING, WS_READY, WS_INITFAIL, WS_EXITING };

/* Response flags; bits 8-15 name the large-reply area used. */
enum { RF_SKIPPED = 1, RF_BIG = 2, RF_MSG = 4 };
#define RF_AREA_SHIFT 8

/* Request flags. */
enum { QF_TIMED = 1, QF_TRACE = 2 /* stamp start_ns and end_ns */ };

/* One cache line each: the worker CASes its current record while the parent
 * fills the next ones. */
struct pp_rec {
	_Atomic uint64_t word;    /* seq << 3 | R_* */
	_Atomic int64_t start_ns; /* CLOCK_MONOTONIC, set by the worker for
				     timed and traced tasks */
	_Atomic int64_t end_ns;   /* set by the worker for traced tasks */
} __attribute__((aligned(64)));

struct pp_req {
	uint64_t seq;
	px_task_fn fn;
	const void *arg;  /* in the arena, or NULL: the bytes are in inl */
	uint32_t arg_len;
	uint32_t flags;   /* QF_* */
	/* CLOCK_MONOTONIC when handed over: the worker learns from it how
	 * long it waited for the request, whether or not it slept (pp_spin). */
	int64_t sent_ns;
	uint32_t pad[2];
	alignas(16) unsigned char inl[PP_REQ_INLINE];
};
_Static_assert(sizeof(struct pp_req) == PP_REQ_SLOT, "request slot size");

struct pp_resp {
	uint64_t seq;
	uint64_t pad0;
	int32_t err;
	uint32_t len;
	uint32_t flags;
	uint32_t pad;
	alignas(16) unsigned char inl[PP_RESP_INLINE];
};
_Static_assert(sizeof(struct pp_resp) == PP_RESP_SLOT, "response slot size");

/* Per worker slot. */
struct pp_wshared {
	alignas(64) _Atomic uint32_t state; /* WS_* */
	int32_t init_err;
	/* Large-reply area i holds a reply the collector has not copied out. */
	alignas(64) _Atomic uint32_t big_busy[PP_NBIG];
	_Atomic uint32_t big_waiters;
	_Atomic uint64_t busy_ns; /* time spent running tasks, this generation */
	/* The worker's pid, stored by itself before its first reply (the
	 * parent learns it later, from the fork server): for timelines. */
	_Atomic int32_t pid;
	/* HELP_* (below): a waiting thread of the parent holds the reply
	 * ring's token and watches the ring, spinning or asleep on hseq; the
	 * worker then wakes it (if asleep) instead of ringing the collector's
	 * doorbell (px__pp_reply_bell). */
	alignas(64) _Atomic uint32_t helper;
	_Atomic uint32_t hseq; /* futex word of the sleeping watcher */
	/* The worker parks here when its request ring is empty: wsleep says
	 * it is about to sleep or sleeps on wseq; the parent bumps wseq and
	 * wakes it after a push or a close (px__pp_worker_wake). A plain
	 * Dekker pair of seq_cst fences, so the sleeper needs no
	 * membarrier() (see worker.c). */
	alignas(64) _Atomic uint32_t wsleep;
	_Atomic uint32_t wseq;
	/* The CPUs the worker and its last watcher last ran on (-1: not
	 * known): a spin for the other side pays only when it runs on
	 * another CPU; on the same one it only delays it. Hints. */
	_Atomic int32_t wcpu, hcpu;
	alignas(64) struct pp_rec rec[PP_WINDOW];
	px_ring *req, *resp;
	/* PP_NBIG areas of big_len bytes: max_result bytes of result, then
	 * PP_MSG_MAX for a message. */
	unsigned char *big;
};

/* The collector's doorbell, at the start of the mapping. */
struct pp_hdr {
	alignas(64) _Atomic uint32_t bell;
	_Atomic uint32_t bell_sleeping;
	_Atomic uint32_t fs_events; /* bumped by the fork server per message */
};

/*
 * What a worker process knows of its pool, filled in before the fork server
 * is forked: a worker runs on the fork server's copy of the parent's memory,
 * so nothing the parent sets later reaches it. The pointers lead into the
 * shared mapping; the rest are plain values.
 */
struct pp_wconf {
	struct pp_hdr *hdr;
	unsigned char *slots;     /* slot i's struct pp_wshared: */
	size_t slot_stride;       /* at slots + i * slot_stride */
	size_t big_len;           /* bytes per large-reply area */
	uint32_t max_result;
	int64_t spin_ns;          /* spin this long before sleeping on a ring */
	uint64_t max_tasks;       /* exit after this many tasks; 0: never */
	uint64_t max_rss;         /* exit after a task that left more private
				     resident memory than this; 0: never */
	px_worker_init_fn init;   /* may be NULL */
	void *init_arg;
};

static inline struct pp_wshared *pp_slot(const struct pp_wconf *wc, int i)
{
	return (struct pp_wshared *)(wc->slots + (size_t)i * wc->slot_stride);
}

static inline uint64_t rword(uint64_t seq, unsigned st)
{
	return seq << 3 | st;
}

/*
 * Rings the collector's doorbell if it sleeps (shared.c). Called by workers,
 * the fork server and the parent's submitters after they publish something
 * (a ring push, a socket message, a timed task).
 */
void px__pp_bell_ring(struct pp_hdr *hdr);

/*
 * A worker's doorbell after pushing a reply onto sh's reply ring (shared.c):
 * when a waiting thread watches the ring (sh->helper), it wakes it if it
 * sleeps and leaves the collector alone; else px__pp_bell_ring(). Dekker
 * pairs with the watcher (reply.c): the push, a seq_cst fence, the load of
 * sh->helper here; the watcher's store of HELP_ASLEEP (or HELP_NONE), a
 * fence, its look at the ring there. Either the watcher sees the reply or
 * this sees the watcher.
 * With defer (the worker has nothing queued), it does not ring the
 * doorbell but returns true: the bell is owed, and the worker rings it
 * PP_BELL_DEFER_NS later if the reply is still on the ring.
 */
bool px__pp_reply_bell(struct pp_hdr *hdr, struct pp_wshared *sh, bool defer);

/* How long an idle worker holds back the doorbell for its last reply
 * (px__pp_reply_bell with defer): the thread that submitted the task is
 * usually on its way to wait for it and takes it itself, which spares a
 * wake of the collector, a third party on two CPUs. */
#define PP_BELL_DEFER_NS (15 * 1000)

/*
 * Wakes sh's worker if it is parked (shared.c), after a push onto its
 * request ring or a close of it. Dekker pair with the worker's park
 * (worker.c): the push or close, a seq_cst fence, the load of wsleep here;
 * the worker's store of wsleep, a fence, its look at the ring there.
 * Returns true when it woke the worker from its sleep.
 */
bool px__pp_worker_wake(struct pp_wshared *sh);

/*
 * How long to spin before parking, learnt from how long the waits were
 * (the worker for its next request, the collector for its next reply): a
 * spin pays only when what it waits for comes within it, and on a machine
 * with few CPUs a spin that does not pay takes the CPU from the party it
 * waits for. Each wait that a spin of the full budget would have caught
 * doubles the budget (up to max), each that it would not have halves it,
 * down to none; a party that parks at once still measures its waits and so
 * starts spinning again when they shorten. Owned by one thread.
 */
struct pp_spin {
	int64_t budget, max; /* ns */
};

static inline void pp_spin_init(struct pp_spin *s, int64_t max)
{
	s->max = max > 0 ? max : 0;
	s->budget = s->max;
}

/* Learns from one wait of waited_ns: the time until what was awaited was
 * there, not until the waiter noticed (a parked party's wake-up time would
 * make every wait look long, and a party that parks once would never spin
 * again). */
static inline void pp_spin_learn(struct pp_spin *s, int64_t waited_ns)
{
	if (waited_ns <= s->max) {
		int64_t b = s->budget ? 2 * s->budget : s->max / 16 + 1;
		s->budget = b < s->max ? b : s->max;
	} else {
		s->budget /= 2;
		if (s->budget < s->max / 64)
			s->budget = 0;
	}
}

/*
 * The worker process's main loop (worker.c), entered through the fork
 * server with ctx a struct pp_wconf *; never returns.
 */
void px__pp_worker_main(void *ctx, int slot, uint64_t gen);

#endif /* PX_PROCPOOL_SHARED_H */
