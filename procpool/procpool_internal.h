/*
 * procpool/procpool_internal.h - what the process pool's sources share: the
 * shared arena allocator and the fork server. Private: never installed.
 *
 * Every shared structure of one pool lives in one MAP_SHARED|MAP_ANONYMOUS
 * mapping made before the fork server is forked. fork() keeps addresses, so
 * the parent, the fork server and every worker see the mapping at the same
 * address, and the pool's private layout may hold plain pointers into it
 * (unlike ipc/ segments, which unrelated processes map anywhere).
 */
#ifndef PX_PROCPOOL_INTERNAL_H
#define PX_PROCPOOL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Arena ------------------------------------------------------------------ */

/*
 * A first-fit allocator with boundary tags and size-class bins over a fixed
 * region, used only by the parent process (px_executor_alloc and large task
 * arguments), so its lock is a plain process-private mutex and a worker that
 * dies can never leave it inconsistent. Blocks are multiples of 64 bytes and
 * 64-byte aligned.
 */
#define PX__ARENA_BINS 40

struct px__arena {
	pthread_mutex_t lock;
	unsigned char *base;
	size_t size;
	size_t used;                  /* bytes in allocated blocks */
	void *bins[PX__ARENA_BINS];   /* free lists by floor(log2(size)) */
};

/* Sets up the arena over [base, base + size); size is rounded down to 64. */
void px__arena_init(struct px__arena *a, void *base, size_t size);

/* Frees the arena's lock (the memory belongs to the caller). */
void px__arena_fini(struct px__arena *a);

/* size bytes, 64-byte aligned, not zeroed; NULL when no block fits. */
void *px__arena_alloc(struct px__arena *a, size_t size);

/* Frees a block from px__arena_alloc(). NULL, pointers that are not the
 * start of a block in use (a second free included, as long as the block's
 * header is intact) are ignored. */
void px__arena_free(struct px__arena *a, void *p);

/* True if p points into the arena's region. */
bool px__arena_owns(const struct px__arena *a, const void *p);

/* Fork server -------------------------------------------------------------- */

/* Messages on the control socket (SOCK_SEQPACKET: one message per record). */
enum {
	PX__FS_SPAWN = 1,   /* parent -> server: fork worker `slot`, `gen` */
	PX__FS_KILL = 2,    /* parent -> server: SIGKILL worker `slot` if `gen` */
	PX__FS_SPAWNED = 3, /* server -> parent: worker runs as `pid` */
	PX__FS_DIED = 4,    /* server -> parent: worker reaped, wait `status` */
	PX__FS_FORKFAIL = 5, /* server -> parent: fork failed, `status` errno */
	PX__FS_EXIT = 6      /* parent -> server: kill what is left, exit */
};

struct px__fs_msg {
	uint32_t op;
	int32_t slot;
	uint64_t gen;
	int32_t pid;
	int32_t status;
};

/* What the fork server needs from the pool, all set before it is forked. */
struct px__fs_conf {
	int nslots;
	pid_t parent;                    /* the pool's process */
	_Atomic uint32_t *bell;          /* the collector's doorbell (shared) */
	_Atomic uint32_t *bell_sleeping; /* set while the collector parks */
	_Atomic uint32_t *fs_events;     /* bumped after each message sent */
	/* Runs in a freshly forked worker; never returns. */
	void (*worker_main)(void *ctx, int slot, uint64_t gen);
	void *ctx;
	/* Descriptors the server closes at once: other pools' control
	 * sockets, which it must not keep open (they would hide their own
	 * parent's death from their servers). */
	const int *close_fds;
	int nclose;
};

/*
 * Forks the fork server. On success stores its pid and the parent's end of
 * the control socket (close-on-exec) and returns 0; else a negative errno.
 */
int px__fs_start(const struct px__fs_conf *conf, pid_t *pid, int *sock);

/* Rings the collector's doorbell (shared futex) if it sleeps. */
void px__pp_bell_ring(_Atomic uint32_t *bell, _Atomic uint32_t *sleeping);

/* Shared futex helpers (no FUTEX_PRIVATE_FLAG: the words are shared between
 * processes). Timeout relative, < 0 forever. */
int px__shfutex_wait(_Atomic uint32_t *w, uint32_t expect, int64_t timeout_ns);
void px__shfutex_wake(_Atomic uint32_t *w, int n);

#endif /* PX_PROCPOOL_INTERNAL_H */
