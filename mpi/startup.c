/*
 * mpi/startup.c - px-mpi's start in every rank: the serving ranks' local
 * pool (before MPI_Init where the launcher names the rank), the px-mpi
 * thread that initialises MPI and alone calls it, and the start-up check
 * that every rank runs the same build.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <parex/executor.h>

#include "mpi_internal.h"

/* This rank's number from the launcher's environment, before MPI_Init; -1
 * if no known launcher set one. */
static int env_rank(void)
{
	static const char *const vars[] = { "OMPI_COMM_WORLD_RANK", "PMI_RANK",
					     "PMIX_RANK", "SLURM_PROCID" };
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);
		if (v && *v) {
			char *end;
			long r = strtol(v, &end, 10);
			if (!*end && r >= 0 && r < 1 << 30)
				return (int)r;
		}
	}
	return -1;
}

/* The local pool of a serving rank, configured by this rank's config:
 * `local` (process, or thread without crash isolation). */
static int local_pool_create(const struct px__config *c, px_executor **out)
{
	px_config *cfg;
	int r = px_config_create(&cfg);
	if (r)
		return r;
	char v[8][32];
	snprintf(v[0], 32, "%d", c->workers_per_rank);
	snprintf(v[1], 32, "%u", c->queue);
	snprintf(v[2], 32, "%u", c->max_arg);
	snprintf(v[3], 32, "%u", c->max_result);
	snprintf(v[4], 32, "%u", c->spin_us);
	snprintf(v[5], 32, "%lld", (long long)c->task_timeout_ms);
	snprintf(v[6], 32, "%llu", (unsigned long long)c->max_tasks_per_worker);
	snprintf(v[7], 32, "%llu", (unsigned long long)c->shm_size);
	const char *k[8] = { "workers", "queue", "max_arg", "max_result",
			     "spin_us", "task_timeout_ms", "max_tasks_per_worker",
			     "shm_size" };
	r = px_config_set(cfg, "backend", c->local, NULL);
	for (int i = 0; i < 8 && !r; i++)
		if (i || c->workers_per_rank > 0)
			r = px_config_set(cfg, k[i], v[i], NULL);
	px_config_set_initializer(cfg, c->init, c->init_arg);
	if (!r)
		r = px_executor_create(out, cfg);
	px_config_destroy(cfg);
	return r;
}

/*
 * What a serving rank does once, before the start-up check, so that the
 * program's first tasks do not pay for memory touched the first time: on
 * this 2-vCPU VM a first touch costs 2.5-3 us a page, and the first map
 * call of bench_mpi cost the serving ranks ~270 faults each in the rank
 * process and ~70 in each worker, ~50-100 again on every later call (the
 * freed chunk buffers trimmed from the heap and faulted back in).
 */

/* Warm-up sizes: a default-sized map chunk (max_arg, max_result 64K). */
#define WARM_MAX (64 * 1024)

/* A warm-up task: a result of min(max_result, WARM_MAX) bytes, written
 * where map's chunks write theirs (the process pool's reply area). */
static int warm_task(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	size_t n = t->max_result < WARM_MAX ? t->max_result : WARM_MAX;
	void *out = t->ops->result_buffer ? t->ops->result_buffer(t, n) : NULL;
	if (out) {
		memset(out, 0, n);
		return 0;
	}
	void *b = calloc(1, n ? n : 1);
	if (!b)
		return -ENOMEM;
	int r = px_task_return(t, b, n);
	free(b);
	return r;
}

/*
 * Runs as many warm-up tasks on the local pool at once as rank 0 may send
 * this rank (its credits), each with an argument and a result as large as
 * a default map chunk's, and waits for them: the pool's argument arena,
 * its workers' reply areas and this process's future buffers are touched
 * now, and kept (keep_heap). Not with max_tasks_per_worker: the warm-up
 * would only use up the workers' lives. Best effort: a failure here is no
 * error (the handshake reports a pool that does not work).
 */
static void warm_local_pool(void)
{
	if (px__mpi.cfg.max_tasks_per_worker)
		return;
	int tasks = px_executor_workers(px__mpi.local) * PX__MPI_CREDITS_PER_WORKER +
		    PX__MPI_CREDITS_EXTRA;
	size_t alen = px__mpi.cfg.max_arg < WARM_MAX ? px__mpi.cfg.max_arg : WARM_MAX;
	void *arg = calloc(1, alen ? alen : 1);
	px_future **fs = calloc((size_t)tasks, sizeof(*fs));
	for (int i = 0; arg && fs && i < tasks; i++)
		if (px_executor_submit(px__mpi.local, warm_task, arg, alen, NULL,
				       &fs[i]))
			break;
	for (int i = 0; fs && i < tasks && fs[i]; i++) {
		(void)px_future_wait(fs[i], PX_FOREVER);
		px_future_release(fs[i]);
	}
	free(arg);
	free(fs);
}

/*
 * A serving rank's process runs only parex (its main() never returns from
 * the open): glibc keeps what it frees instead of trimming the heap (up to
 * 64 MiB), and serves blocks up to 32 MiB from the heap rather than fresh
 * mmaps, so that chunk buffers freed by one map call are still there for
 * the next. Set before the local pool forks, so its workers inherit it.
 */
static void keep_heap(void)
{
#ifdef M_TRIM_THRESHOLD
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
}

/* Every rank's hello, gathered (one MPI_Allgather). Aborts the job when
 * out of memory: every rank must take part in the collective. */
static struct px__mpi_hello *gather_hellos(int local_status)
{
	struct px__mpi_hello me = { .status = local_status };
	px__mpi_program_id(&me.program);
	me.workers = px__mpi.local ? px_executor_workers(px__mpi.local) : 0;
	int hl = 0;
	char host[MPI_MAX_PROCESSOR_NAME];
	MPI_Get_processor_name(host, &hl);
	host[sizeof(me.host) - 1] = 0; /* longer names are cut */
	memcpy(me.host, host, strlen(host) + 1);
	struct px__mpi_hello *all = calloc((size_t)px__mpi.size, sizeof(*all));
	px__mpi.ranks = calloc((size_t)px__mpi.size, sizeof(*px__mpi.ranks));
	if (!all || !px__mpi.ranks) {
		px__mpi_fatal("out of memory at start-up");
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	/* Clocks read as the ranks leave one barrier: close enough to
	 * place other hosts' task times in rank 0's trace. */
	MPI_Barrier(px__mpi.comm);
	me.clock_ns = px__now_ns();
	MPI_Allgather(&me, sizeof(me), MPI_BYTE, all, sizeof(me), MPI_BYTE,
		      px__mpi.comm);
	return all;
}

/* The verdict every rank reaches alike from the hellos; rank 0 says why. */
static int judge_hellos(struct px__mpi_hello *all)
{
	bool say = px__mpi.rank == 0;
	if (px__mpi.size < 2) {
		if (say)
			px__mpi_fatal("the mpi backend needs at least 2 ranks "
				      "(rank 0 submits, the others run tasks): "
				      "launch with mpirun -n N, N >= 2");
		return -EINVAL;
	}
	if (!all[0].program.id_len) {
		if (say)
			px__mpi_fatal("the program has no build-id (link with "
				      "-Wl,--build-id): tasks cannot be named "
				      "across ranks");
		return -ENOTSUP;
	}
	char h0[2 * PX__MPI_ID_MAX + 1], hk[2 * PX__MPI_ID_MAX + 1];
	px__mpi_id_hex(&all[0].program, h0, sizeof(h0));
	int verdict = 0;
	for (int r = 1; r < px__mpi.size; r++) {
		struct px__mpi_hello *h = &all[r];
		h->host[sizeof(h->host) - 1] = 0;
		if (h->program.id_len != all[0].program.id_len ||
		    memcmp(h->program.id, all[0].program.id, h->program.id_len)) {
			px__mpi_id_hex(&h->program, hk, sizeof(hk));
			if (say)
				px__mpi_fatal("rank %d (%s) runs a different "
					      "program than rank 0 (build-id %s, "
					      "rank 0 has %s): refusing to send "
					      "it tasks", r, h->host, hk, h0);
			verdict = PX_EVERSION;
		} else if (h->status && !verdict) {
			if (say)
				px__mpi_fatal("rank %d (%s) could not create "
					      "its local pool: %s", r, h->host,
					      px_strerror(h->status));
			verdict = h->status;
		}
	}
	return verdict;
}

/* The start-up check: every rank's hello, then the verdict all ranks
 * reach alike; fills px__mpi.ranks. */
static int handshake(int local_status)
{
	struct px__mpi_hello *all = gather_hellos(local_status);
	int verdict = judge_hellos(all);
	px__mpi.total_workers = 0;
	int tracks = 0;
	for (int r = 0; r < px__mpi.size; r++) {
		struct px__mpi_rank *k = &px__mpi.ranks[r];
		k->workers = r ? all[r].workers : 0;
		k->credits = r ? all[r].workers * PX__MPI_CREDITS_PER_WORKER +
					 PX__MPI_CREDITS_EXTRA
			       : 0;
		snprintf(k->host, sizeof(k->host), "%s", all[r].host);
		k->clock_off = strcmp(all[r].host, all[0].host)
			? all[r].clock_ns - all[0].clock_ns : 0;
		k->track_base = tracks;
		tracks += k->credits;
		px__mpi.total_workers += k->workers;
	}
	free(all);
	return verdict;
}

static void set_state(int state, int err)
{
	pthread_mutex_lock(&px__mpi.lock);
	px__mpi.state = state;
	px__mpi.err = err;
	pthread_cond_broadcast(&px__mpi.cond);
	pthread_mutex_unlock(&px__mpi.lock);
}

/* MPI_Init_thread and this process's communicator. 0, or why not. */
static int init_mpi(void)
{
	int inited = 0;
	MPI_Initialized(&inited);
	if (inited) {
		/* The program uses MPI itself: its MPI_Finalize could come
		 * before the px-mpi thread is done with MPI. Not supported. */
		px__mpi_fatal("MPI is already initialised: the mpi backend "
			      "must make the program's first MPI calls itself");
		return -ENOTSUP;
	}
	/* SERIALIZED: rank 0's callers may make MPI calls under mpi_lock;
	 * with less (FUNNELED or below) only the px-mpi thread does. */
	int prov = MPI_THREAD_SINGLE;
	if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &prov) !=
	    MPI_SUCCESS) {
		px__mpi_fatal("MPI_Init_thread failed");
		return -EIO;
	}
	px__mpi.callers_drive = prov >= MPI_THREAD_SERIALIZED;
	MPI_Comm_dup(MPI_COMM_WORLD, &px__mpi.comm);
	MPI_Comm_rank(px__mpi.comm, &px__mpi.rank);
	MPI_Comm_size(px__mpi.comm, &px__mpi.size);
	return 0;
}

static void finalize_mpi(void)
{
	MPI_Comm_free(&px__mpi.comm);
	MPI_Finalize();
}

/* The px-mpi thread: start-up, then rank 0's progress loop or a serving
 * rank's loop, then MPI_Finalize. */
static void *px_mpi_thread(void *arg)
{
	(void)arg;
	/* Short sleeps in px__mpi_idle_wait() are meant as written. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	int r = init_mpi();
	if (r) {
		set_state(-1, r);
		return NULL;
	}
	int local_status = 0;
	if (px__mpi.rank != 0 && !px__mpi.local) { /* no rank given: late pool */
		keep_heap();
		local_status = local_pool_create(&px__mpi.cfg, &px__mpi.local);
	}
	if (px__mpi.rank == 0 && px__mpi.local) {
		px_executor_destroy(px__mpi.local);
		px__mpi.local = NULL;
	}
	if (px__mpi.rank != 0 && px__mpi.local)
		warm_local_pool();
	r = handshake(local_status);
	if (r) {
		px_executor_destroy(px__mpi.local);
		px__mpi.local = NULL;
		finalize_mpi();
		set_state(-1, r);
		return NULL;
	}
	set_state(1, 0);
	if (px__mpi.rank != 0)
		px__mpi_serve();
	else
		px__mpi_progress();
	finalize_mpi();
	return NULL;
}

void px__mpi_atexit(void)
{
	pthread_mutex_lock(&px__mpi.lock);
	px__mpi.exit_req = true;
	pthread_cond_broadcast(&px__mpi.cond);
	pthread_cond_signal(&px__mpi.wake);
	pthread_mutex_unlock(&px__mpi.lock);
	pthread_join(px__mpi.thr, NULL);
}

int px__mpi_start(const struct px__config *cfg)
{
	if (!px__mpi.started) {
		px__mpi.cfg = *cfg;
		if (env_rank() > 0) {
			keep_heap();
			/* Before MPI_Init: no worker is forked from a process
			 * holding MPI state. A failure is reported to rank 0
			 * at the handshake. */
			if (local_pool_create(cfg, &px__mpi.local))
				px__mpi.local = NULL;
		}
		int r = pthread_create(&px__mpi.thr, NULL, px_mpi_thread, NULL);
		if (r)
			return -r;
		px__mpi.started = true;
	}
	while (px__mpi.state == 0)
		pthread_cond_wait(&px__mpi.cond, &px__mpi.lock);
	return px__mpi.state < 0 ? px__mpi.err : 0;
}
