/*
 * procpool/forkserver.h - the fork server (forkserver.c): a process forked
 * once per pool that forks and reaps the pool's workers on request and
 * reports their deaths. Private: never installed.
 */
#ifndef PX_PROCPOOL_FORKSERVER_H
#define PX_PROCPOOL_FORKSERVER_H

#include <stdint.h>
#include <sys/types.h>

#include "shared.h"

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
	/* The doorbell (shared): the server bumps fs_events after each
	 * message it sends and rings the bell. */
	struct pp_hdr *hdr;
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

#endif /* PX_PROCPOOL_FORKSERVER_H */
