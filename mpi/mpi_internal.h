/*
 * mpi/mpi_internal.h - libparex-mpi's private declarations: the wire format
 * between ranks, the function identity, the process's px-mpi state and what
 * each file of mpi/ offers the others. Never installed.
 *
 * Data flows one way through the files:
 *   backend.c (rank 0's executor ops: submit queues a task)
 *     -> dispatch.c (a slot and a rank's credit for it)
 *     -> client.c (rank 0's px-mpi thread: packs and sends it)
 *     -> pack.c (messages) -> serve.c (a serving rank: its local pool)
 *     -> pack.c -> client.c (the result completes the future).
 * startup.c starts px-mpi and checks that every rank runs the same build;
 * fnid.c names functions across ranks; idle.c is how a px-mpi thread waits.
 */
#ifndef PX_MPI_INTERNAL_H
#define PX_MPI_INTERNAL_H

#include <mpi.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "executor_internal.h"
#include "px_clock.h"

#define PX__MPI_ID_MAX 32 /* build-id bytes kept (GNU ld writes 20) */

/* A function as {module build-id, offset from the module's load address}. */
struct px__mpi_fnid {
	uint8_t id[PX__MPI_ID_MAX];
	uint8_t id_len;
	uint8_t pad[7];
	uint64_t off;
};

/* Encodes fn. 0, -EINVAL (not in executable code of a loaded module),
 * -ENOTSUP (its module has no build-id). px-mpi thread only. */
int px__mpi_fn_encode(const void *fn, struct px__mpi_fnid *out);

/* Finds the function id names in this process. 0, PX_EVERSION (no loaded
 * module has that build-id), -EINVAL (the offset is not code of it). */
int px__mpi_fn_decode(const struct px__mpi_fnid *id, void **fn);

/* The program's own build-id. 0 or -ENOTSUP (linked without one). */
int px__mpi_program_id(struct px__mpi_fnid *out);

/* id as hex into buf. */
void px__mpi_id_hex(const struct px__mpi_fnid *id, char *buf, size_t len);

/* Message tags. Rank 0 -> serving rank: */
#define PX__MPI_TAG_TASK 1    /* records: struct px__mpi_task + argument */
#define PX__MPI_TAG_CANCEL 2  /* uint64_t id: cancel, running or not */
#define PX__MPI_TAG_DROP 3    /* empty: cancel every task not started */
#define PX__MPI_TAG_EXIT 4    /* empty: stop serving, leave the process */
#define PX__MPI_TAG_ARG 6     /* a PX__MPI_T_SEPARATE task's argument */
/* Serving rank -> rank 0: */
#define PX__MPI_TAG_RESULT 10 /* records: px__mpi_result + result + message */
#define PX__MPI_TAG_RESDATA 11 /* a PX__MPI_R_SEPARATE record's result */
#define PX__MPI_TAG_BYE 12    /* empty: EXIT taken, nothing more follows */

/*
 * An argument or result this large travels as its own message, sent from
 * the future's memory and received straight into its destination (the
 * result buffer of rank 0's future), right after the message with its
 * record: packing it would cost a copy each way (map's 64 KiB chunks).
 * Messages from one rank with one tag arrive in order, so the n-th record
 * with the flag owns the n-th such message. A serving rank receives with
 * MPI_ANY_TAG, so rank 0 sends the task's message before its argument
 * (matching one receive, they arrive in the order sent); rank 0 receives
 * results by tag, and takes every result message, even with no executor
 * attached, so that no RESDATA message is left for a later record.
 */
#define PX__MPI_SEPARATE_MIN (32 * 1024)

#define PX__MPI_T_CHUNK 1u /* a map() chunk: inner is its record function */
#define PX__MPI_T_TRACE 2u /* rank 0 traces: report when and where it ran */
#define PX__MPI_T_SEPARATE 4u /* the argument follows as a TAG_ARG message */
#define PX__MPI_R_SEPARATE 1u /* the result follows as a TAG_RESDATA message */

struct px__mpi_task {
	uint64_t id;
	int64_t timeout_ns;
	struct px__mpi_fnid fn;
	struct px__mpi_fnid inner;
	uint32_t flags;
	uint32_t arg_len;
};

struct px__mpi_result {
	uint64_t id;
	int32_t err;
	uint32_t res_len;
	uint32_t msg_len; /* without the NUL; the message follows the result */
	int32_t lane;     /* PX__MPI_T_TRACE: the rank's trace lane, else -1 */
	uint32_t flags;   /* PX__MPI_R_* */
	uint32_t pad;
	int64_t start_ns; /* PX__MPI_T_TRACE: on the local pool from ... */
	int64_t end_ns;   /* ... to, in the serving rank's CLOCK_MONOTONIC */
};

/* What every rank tells every other at start-up (one MPI_Allgather). */
struct px__mpi_hello {
	struct px__mpi_fnid program;
	int32_t workers;  /* the rank's local pool; 0 on rank 0 */
	int32_t status;   /* 0, or why the rank cannot serve */
	int64_t clock_ns; /* CLOCK_MONOTONIC just after a barrier */
	char host[64];
};

/* ---- the state of the process's px-mpi side ------------------------------- */

/* A serving rank's window: enough queued behind each worker to cover a round
 * trip, small enough that an idle rank still finds work left to take. */
#define PX__MPI_CREDITS_PER_WORKER 4
#define PX__MPI_CREDITS_EXTRA 8

/* What rank 0 knows of a serving rank (from the start-up hello). */
struct px__mpi_rank {
	int workers;
	int credits, used; /* tasks it may hold; tasks sent, not answered */
	/* Traces: its lanes (at most credits) are rank 0's tracks from
	 * track_base; its clock minus rank 0's (0 on rank 0's host). */
	int track_base;
	int64_t clock_off;
	char host[64];
};

/* A task sent to a rank and not yet answered, found by its wire id
 * {gen, index}: a stale answer (gen moved on) finds nothing. */
struct px__mpi_slot {
	px_future *f; /* NULL when free */
	uint32_t gen;
	int rank;
	bool cancel_req; /* PX_CANCEL_RUNNING asked, CANCEL not yet sent */
	uint32_t next_free;
	int64_t sent_ns; /* traced executors: when it was packed */
};

#define PX__MPI_NO_SLOT UINT32_MAX

/* Rank 0's executor. Everything but ex and counts is under px__mpi.lock. */
struct px__mpi_ex {
	px_executor ex; /* first */
	px_future *qh, *qt; /* not yet sent, linked by qnext */
	uint32_t nq, cap;
	uint64_t outstanding; /* submitted, not yet finished by px-mpi */
	bool closed, cancel_pending, drop_sent;
	struct px__mpi_slot *slots;
	uint32_t nslots, free_head, inflight, ncancel;
	struct px__counts counts; /* written under mpi_lock, by whichever
				     thread drives MPI (px-mpi, a submitter or
				     a waiter) */
};

/*
 * The process's px-mpi side, one per process. lock guards it and the
 * attached executor's queue, slots and flags; cond is broadcast on every
 * change a program's thread waits for (readiness, queue room, quiescence),
 * wake when rank 0's px-mpi thread has new work. MPI calls are made
 * without lock.
 */
struct px__mpi_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thr;
	bool started;
	int state; /* 0 starting, 1 ready, -1 failed */
	int err;
	bool exit_req;
	/* Rank 0's px-mpi thread parks on wake (client.c): idle while it
	 * does, deep while only a signal ends the park. */
	pthread_cond_t wake;
	bool idle, deep;
	int helpers;       /* rank 0: threads driving MPI in wait_help */
	/* Rank 0: MPI granted MPI_THREAD_SERIALIZED, so a thread that
	 * submits or waits may make the px-mpi thread's MPI calls itself,
	 * holding mpi_lock (client.c). Set before the executor exists. */
	bool callers_drive;
	/* Rank 0: held for every MPI call after start-up. Lock order:
	 * mpi_lock, then lock; never mpi_lock while holding lock. */
	pthread_mutex_t mpi_lock;
	bool mpi_closed; /* under mpi_lock: px-mpi is finalizing MPI */
	MPI_Comm comm;
	int rank, size;
	struct px__mpi_rank *ranks;
	int total_workers;
	struct px__mpi_ex *cur;
	px_executor *local;    /* serving ranks: the local pool */
	struct px__config cfg; /* of the first open, for the local pool */
};

extern struct px__mpi_state px__mpi;

/* "parex mpi: ..." and a newline on stderr. */
void px__mpi_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- message packing (pack.c) --------------------------------------------- */

/* Records for one rank packed into one message, up to PX__MPI_PACK_MAX. */
#define PX__MPI_PACK_MAX (64 * 1024)

struct px__mpi_pack {
	unsigned char *b;
	size_t len, cap;
	int tag;
};

/* The sends one px-mpi thread has in flight, and its packs by rank. */
struct px__mpi_sends {
	MPI_Request *req;
	void **buf;
	px_future **hold; /* per send: NULL (buf is freed), or the future
			     whose memory buf is, released when sent */
	size_t n, cap;
	struct px__mpi_pack *pk; /* px__mpi.size packs, by destination rank */
};

/* Starts sending len bytes of buf (malloc'd; freed once sent) to rank. */
void px__mpi_send_owned(struct px__mpi_sends *s, void *buf, size_t len,
			int rank, int tag);

/* Makes room for one more send; false when out of memory. */
bool px__mpi_sends_reserve(struct px__mpi_sends *s);

/* Starts sending len bytes at buf, memory of future hold, to rank: hold
 * gets a reference until the send is done. No copy: for large arguments
 * and results (PX__MPI_SEPARATE_MIN). Sends synchronously without the room
 * px__mpi_sends_reserve() makes. */
void px__mpi_send_held(struct px__mpi_sends *s, const void *buf, size_t len,
		       int rank, int tag, px_future *hold);

/* Sends an empty message tagged tag to every serving rank. */
void px__mpi_send_all(struct px__mpi_sends *s, int tag);

/* Retires completed sends. Returns true if any completed. */
bool px__mpi_sends_poll(struct px__mpi_sends *s);

/* Starts sending the records packed for rank, if any. */
void px__mpi_pack_flush(struct px__mpi_sends *s, int rank);

/* Starts sending what is packed for every rank. */
void px__mpi_packs_flush(struct px__mpi_sends *s);

/* Room for a record of len bytes, tagged tag, in the next message to rank;
 * NULL when out of memory. Sends what was packed first when the record
 * would not fit or the tag differs. */
unsigned char *px__mpi_pack_room(struct px__mpi_sends *s, int rank, int tag,
				 size_t len);

/* The offset of the record after the one of len bytes at off, in a packed
 * message of n bytes (len padded as the sender padded it, clamped to n). */
size_t px__mpi_next_record(size_t off, size_t len, size_t n);

/* Flushes the packs, waits for every send, frees everything. */
void px__mpi_sends_finish(struct px__mpi_sends *s);

/* Receives the probed message into *buf (grown as needed). Its length, or
 * -1 (nothing could be received into memory: the message is dropped). */
long px__mpi_recv_probed(MPI_Status *st, unsigned char **buf, size_t *cap);

/* Receives the next message tagged tag from rank (it has been sent) into
 * *buf (grown as needed), as px__mpi_recv_probed(). */
long px__mpi_recv_next(int rank, int tag, unsigned char **buf, size_t *cap);

/* ---- how a px-mpi thread waits between empty polls (idle.c) ------------- */

struct px__mpi_idle {
	struct px__spin spin;
	unsigned sleeps; /* empty rounds past the spin; 0: the spin not begun */
	bool spinning;
};

/* Something happened: the next empty round starts spinning again. */
void px__mpi_idle_reset(struct px__mpi_idle *d);

/* Whether the spin after the last event lasts yet (begun if not). */
bool px__mpi_idle_spinning(struct px__mpi_idle *d);

/* One empty round: spins, then sleeps a little longer each time (busy:
 * tasks are out, so shorter sleeps). */
void px__mpi_idle_wait(struct px__mpi_idle *d, bool busy);

/* ---- the serving ranks (serve.c) ------------------------------------------ */

/* The serving loop of ranks >= 1: until rank 0 sends EXIT. */
void px__mpi_serve(void);

/* ---- rank 0 (dispatch.c: slots and credits; client.c: the progress loop) */

/* The rank with the most free credits, or -1. Under px__mpi.lock. */
int px__mpi_best_rank(void);

/* Frees slot i. Under px__mpi.lock. */
void px__mpi_slot_free(struct px__mpi_ex *m, uint32_t i);

/* Takes the next queued task into a free slot for the rank with the most
 * free credits: its slot index, or PX__MPI_NO_SLOT (nothing queued, no
 * slot, or no credit). Under px__mpi.lock. */
uint32_t px__mpi_dispatch_one(struct px__mpi_ex *m);

/* Where and when a task ran, for rank 0's trace: rank 0's clock and
 * track (struct px__trace_event's worker). */
struct px__mpi_ran {
	int64_t start_ns, end_ns;
	int track;
};

/* One task finished by px-mpi: counts it, records it in the trace (ran
 * NULL: it never ran), completes it (if complete), drops the task's
 * reference, wakes a waited shutdown at the last one. */
void px__mpi_task_finished(struct px__mpi_ex *m, px_future *f, int err,
			   bool complete, const struct px__mpi_ran *ran);

/* Names rank 0's trace tracks after the rank and host (track_name of
 * struct px__trace). */
void px__mpi_track_name(void *arg, int track, char *buf, size_t len);

/* The cancel hook of a sent task: PX_CANCEL_RUNNING asks its rank. */
int px__mpi_cancel_running(px_future *f, void *arg);

/* The px-mpi thread's loop on rank 0, until the process exits; then it
 * sends EXIT to every serving rank. */
void px__mpi_progress(void);

/* A submitting thread sends what is queued itself, if MPI is free (rank
 * 0, callers_drive). Called without locks. */
void px__mpi_submit_drive(void);

/* ops->wait_help: a thread about to wait for f drives MPI itself while
 * its future is out (rank 0, callers_drive). */
int px__mpi_wait_help(px_executor *ex, px_future *f, int64_t deadline);

/* ---- start-up (startup.c) --------------------------------------------------- */

/* Starts px-mpi once per process and waits for the start-up check. 0, or
 * the verdict (-EINVAL, -ENOTSUP, PX_EVERSION, ...). Under px__mpi.lock. */
int px__mpi_start(const struct px__config *cfg);

/* Rank 0's atexit handler: tells px-mpi to release the ranks, joins it. */
void px__mpi_atexit(void);

#endif /* PX_MPI_INTERNAL_H */
