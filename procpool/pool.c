/*
 * procpool/pool.c - the process pool's life: creating it (the shared
 * mapping, the fork server, the collector, the first workers), shutting it
 * down, destroying it, and the backend's small operations (stats, shared
 * allocations). Runs in the threads that call those; the collector's work
 * is in collector.c, the submitters' in submit.c, the workers' in worker.c.
 * See procpool/README.md for the design.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <parex/ring.h>

#include "dispatch.h"
#include "forkserver.h"
#include "pool.h"

/* Other pools' control sockets, closed by each new fork server. --------- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static int *reg_fds;
static int reg_n, reg_cap;

static void reg_add(int fd)
{
	if (reg_n == reg_cap) {
		int nc = reg_cap ? reg_cap * 2 : 8;
		int *n = realloc(reg_fds, (size_t)nc * sizeof(*n));
		if (!n)
			return; /* only hides a death from one server sooner */
		reg_fds = n;
		reg_cap = nc;
	}
	reg_fds[reg_n++] = fd;
}

static void reg_del(int fd)
{
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < reg_n; i++)
		if (reg_fds[i] == fd) {
			reg_fds[i] = reg_fds[--reg_n];
			break;
		}
	if (!reg_n) {
		free(reg_fds);
		reg_fds = NULL;
		reg_cap = 0;
	}
	pthread_mutex_unlock(&reg_lock);
}

/* Helpers the collector shares ---------------------------------------------- */

void px__pp_slot_reset(struct pp_worker *w, uint64_t *busy_dead)
{
	struct pp_wshared *sh = w->sh;
	px_ring_init(sh->req, (size_t)px_ring_memsize(PP_WINDOW, PP_REQ_SLOT, PX_RING_SPSC),
		     PP_WINDOW, PP_REQ_SLOT, PX_RING_SPSC);
	px_ring_set_spin(sh->req, 0);
	px_ring_init(sh->resp, (size_t)px_ring_memsize(PP_WINDOW, PP_RESP_SLOT, PX_RING_SPSC),
		     PP_WINDOW, PP_RESP_SLOT, PX_RING_SPSC);
	px_ring_set_spin(sh->resp, 0);
	for (int i = 0; i < PP_WINDOW; i++) {
		atomic_store_explicit(&sh->rec[i].word, 0, memory_order_relaxed);
		atomic_store_explicit(&sh->rec[i].start_ns, 0, memory_order_relaxed);
		atomic_store_explicit(&sh->rec[i].end_ns, 0, memory_order_relaxed);
	}
	for (int i = 0; i < PP_NBIG; i++)
		atomic_store_explicit(&sh->big_busy[i], 0, memory_order_relaxed);
	atomic_store_explicit(&sh->big_waiters, 0, memory_order_relaxed);
	*busy_dead += atomic_load_explicit(&sh->busy_ns, memory_order_relaxed);
	atomic_store_explicit(&sh->busy_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&sh->pid, 0, memory_order_relaxed);
	atomic_store_explicit(&sh->helper, HELP_NONE, memory_order_relaxed);
	atomic_store_explicit(&sh->wsleep, 0, memory_order_relaxed);
	atomic_store_explicit(&sh->wcpu, -1, memory_order_relaxed);
	atomic_store_explicit(&sh->hcpu, -1, memory_order_relaxed);
	atomic_store_explicit(&sh->state, WS_NONE, memory_order_relaxed);
	sh->init_err = 0;
	w->gen++;
	w->next_seq = w->done_seq = 0;
	w->dispatched = 0;
	w->kill_reason = K_NONE;
	w->pid = 0;
}

void px__pp_fs_send(struct pp_pool *p, uint32_t op, int slot, uint64_t gen)
{
	struct px__fs_msg m = { .op = op, .slot = slot, .gen = gen };
	while (send(p->sock, &m, sizeof(m), MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/*
 * Reaps the fork server once it has exited (it was told to, or died). Not
 * with a blocking waitpid(): in a program that ignores SIGCHLD the kernel
 * reaps children itself, and a blocking waitpid() for one of them returns
 * only when *every* child of the process has exited, another pool's fork
 * server included, so destroying one pool would wait for the next.
 */
void px__pp_server_reap(struct pp_pool *p)
{
	if (p->fs_pid <= 0)
		return;
	for (long us = 20;; us = us < 1000 ? us * 2 : us) {
		pid_t r = waitpid(p->fs_pid, NULL, WNOHANG);
		if (r == p->fs_pid || (r < 0 && errno != EINTR))
			break; /* reaped, or by the kernel (ECHILD) */
		if (r == 0)
			usleep((useconds_t)us);
	}
	p->fs_pid = 0;
}

/* Shutdown and destruction ---------------------------------------------------- */

/* Takes the tasks still PENDING out of the central queue and returns them
 * (linked by qnext); those back from a dead worker are RUNNING and stay.
 * Lock held. */
static px_future *unqueue_pending(struct pp_pool *p)
{
	px_future *drop = NULL;
	for (int lev = 0; lev < PL_LEVELS; lev++) {
		px_future **pp = &p->qh[lev];
		p->qt[lev] = NULL;
		while (*pp) {
			px_future *f = *pp;
			if (!(f->backend_data & BD_STARTED)) {
				*pp = f->qnext;
				f->qnext = drop;
				drop = f;
				p->qcount--;
			} else {
				p->qt[lev] = f;
				pp = &f->qnext;
			}
		}
	}
	return drop;
}

static void pp_shutdown(px_executor *ex, bool wait, bool cancel_pending)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	px_future *drop = NULL;
	pthread_mutex_lock(&p->lock);
	p->shutting = true;
	atomic_store_explicit(&p->attention, 1, memory_order_relaxed);
	if (cancel_pending)
		drop = unqueue_pending(p);
	pthread_cond_broadcast(&p->space);
	pthread_mutex_unlock(&p->lock);
	while (drop) {
		px_future *nx = drop->qnext;
		pp_trace_not_run(p, drop, -ECANCELED);
		px__future_cancel_pending(drop);
		xcount(p, -ECANCELED);
		px_future_release(drop);
		drop = nx;
	}
	ring_bell_always(p);
	if (wait && px__pp_on_helper(p)) {
		/* A done callback in a waiting thread (reply.c), which holds
		 * pins on the executor that px_executor_destroy() would wait
		 * for: give them back, and do not wait, as on the collector. */
		px__pp_helper_unpin(p);
		return;
	}
	if (!wait || !p->collector_started ||
	    pthread_equal(pthread_self(), p->collector))
		return; /* a done callback cannot wait for its own thread */
	pthread_mutex_lock(&p->lock);
	while (!p->finished)
		pthread_cond_wait(&p->state_cv, &p->lock);
	bool join = !p->joined;
	p->joined = true;
	pthread_mutex_unlock(&p->lock);
	if (join)
		pthread_join(p->collector, NULL);
}

void px__pp_free(struct pp_pool *p)
{
	px__executor_fini(&p->ex); /* the collector is joined or is us */
	if (p->sock >= 0) {
		reg_del(p->sock);
		close(p->sock);
	}
	if (p->map)
		munmap(p->map, p->map_len);
	px__arena_fini(&p->arena);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->space);
	pthread_cond_destroy(&p->state_cv);
	free(p->w);
	free(p);
}

static void pp_destroy(px_executor *ex)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	if (px__pp_on_collector(p)) {
		/* From a done callback, on the collector, which cannot join
		 * itself and still has to see the workers out: it goes
		 * detached and frees the pool when it leaves. The shutdown
		 * has begun (px_executor_destroy shuts down first). */
		pthread_mutex_lock(&p->lock);
		p->free_on_exit = true;
		p->joined = true;
		pthread_mutex_unlock(&p->lock);
		pthread_detach(pthread_self());
		return;
	}
	/* Never from a done callback in a waiting thread: lib defers that
	 * destroy until the thread has left wait_help (px__help_defer_destroy). */
	pthread_mutex_lock(&p->lock);
	bool join = p->collector_started && !p->joined;
	p->joined = true;
	pthread_mutex_unlock(&p->lock);
	if (join)
		pthread_join(p->collector, NULL);
	/* A waiting thread whose callback shut the pool down gave its pins
	 * back (px__pp_helper_unpin) and takes them again before the
	 * collector can leave: wait for its last touch of ex. */
	while (atomic_load_explicit(&p->ex.helping, memory_order_acquire))
		sched_yield();
	px__pp_free(p);
}

/* Stats and shared allocations ---------------------------------------------------- */

static void pp_stats(px_executor *ex, px_executor_stats *out)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	pthread_mutex_lock(&p->lock);
	uint64_t queued = p->qcount, running = 0, workers = 0;
	for (int i = 0; i < p->nw; i++) {
		struct pp_worker *w = &p->w[i];
		if (w_counted(w))
			workers++;
		uint64_t n = w_inflight(w);
		if (!n)
			continue;
		uint64_t word = atomic_load_explicit(
			&w->sh->rec[w->done_seq % PP_WINDOW].word, memory_order_acquire);
		unsigned st = (unsigned)(word & 7);
		if (st == R_RUNNING || st == R_KILLING || st == R_DONE ||
		    st == R_CANCELREQ) {
			running++;
			n--;
		}
		queued += n;
	}
	out->queued = queued;
	out->running = running;
	out->workers = workers;
	out->respawns = p->respawns;
	out->busy_ns += p->busy_dead;
	for (int i = 0; i < p->nw; i++)
		out->busy_ns += atomic_load_explicit(&p->w[i].sh->busy_ns,
						     memory_order_relaxed);
	pthread_mutex_unlock(&p->lock);
	px__counts_add(out, &p->ccounts);
	px__counts_add(out, &p->xcounts);
}

static int pp_alloc(px_executor *ex, size_t size, void **out)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	void *m = px__arena_alloc(&p->arena, size);
	if (!m)
		return -ENOMEM;
	memset(m, 0, size);
	*out = m;
	return 0;
}

static void pp_free_mem(px_executor *ex, void *m)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	if (px__arena_owns(&p->arena, m))
		px__arena_free(&p->arena, m);
}

/* Creation ------------------------------------------------------------------------ */

static size_t align_up(size_t x, size_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* Stops everything after a failed creation: the fork server kills the
 * workers it has, the collector stops. */
static void pp_abort(struct pp_pool *p)
{
	if (p->collector_started) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		atomic_store_explicit(&p->attention, 1, memory_order_relaxed);
		pthread_mutex_unlock(&p->lock);
		ring_bell_always(p);
		pthread_join(p->collector, NULL);
	}
	if (p->fs_pid > 0) {
		px__pp_fs_send(p, PX__FS_EXIT, 0, 0);
		px__pp_server_reap(p);
	}
	px__pp_free(p);
}

/* The pool's private part: settings, locks, the slot array. NULL when out
 * of memory. */
static struct pp_pool *pool_new(const struct px__config *cfg)
{
	struct pp_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	px__executor_init(&p->ex, &px__process_backend, cfg);
	p->sock = -1;
	p->nw = p->ex.cfg.workers;
	/* Room to grow (px_executor_resize): slots cost address space,
	 * and memory only for their rings once used. */
	p->nwcap = p->nw * 4 > 16 ? p->nw * 4 : 16;
	if (p->nwcap > 4096)
		p->nwcap = 4096;
	p->grace_ns = cfg->cancel_grace_ms * PX_MSEC;
	p->qcap = cfg->queue ? cfg->queue : 1;
	p->max_tasks = cfg->max_tasks_per_worker;
	p->spin_ns = (int64_t)cfg->spin_us * 1000;
	/* Adaptive: submitters and the collector hold it for a few hundred
	 * nanoseconds; spinning briefly beats a futex sleep. */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&p->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_cond_init(&p->space, NULL);
	pthread_cond_init(&p->state_cv, NULL);
	px__arena_init(&p->arena, NULL, 0);
	p->w = calloc((size_t)p->nwcap, sizeof(*p->w));
	if (!p->w) {
		px__pp_free(p);
		return NULL;
	}
	return p;
}

/*
 * Makes the shared mapping (layout in shared.h) and lays it out: the
 * doorbell, each slot with its rings and large-reply areas, the arena.
 * Fills in what the workers will be forked with. 0 or a negative errno.
 */
static int map_shared(struct pp_pool *p, const struct px__config *cfg)
{
	size_t reqsz = (size_t)px_ring_memsize(PP_WINDOW, PP_REQ_SLOT, PX_RING_SPSC);
	size_t respsz = (size_t)px_ring_memsize(PP_WINDOW, PP_RESP_SLOT, PX_RING_SPSC);
	p->big_len = align_up((size_t)cfg->max_result + PP_MSG_MAX, 64);
	size_t per = align_up(sizeof(struct pp_wshared), 128) + align_up(reqsz, 128) +
		     align_up(respsz, 128) + PP_NBIG * p->big_len;
	size_t arena = align_up(cfg->shm_size ? cfg->shm_size : 64, 4096);
	p->map_len = align_up(sizeof(struct pp_hdr), 128) + per * (size_t)p->nwcap + arena;
	/* MAP_NORESERVE: pages cost memory only once touched. */
	void *map = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		return errno == EINVAL ? -ENOMEM : -errno;
	p->map = map;
	unsigned char *c = map;
	p->hdr = (struct pp_hdr *)c;
	c += align_up(sizeof(struct pp_hdr), 128);
	p->wconf = (struct pp_wconf){
		.hdr = p->hdr,
		.slots = c,
		.slot_stride = per,
		.big_len = p->big_len,
		.max_result = p->ex.cfg.max_result,
		.spin_ns = p->spin_ns,
		.max_tasks = p->max_tasks,
		.max_rss = cfg->max_worker_rss,
		.init = p->ex.cfg.init,
		.init_arg = p->ex.cfg.init_arg,
	};
	for (int i = 0; i < p->nwcap; i++) {
		struct pp_worker *w = &p->w[i];
		w->id = i;
		w->life = i < p->nw ? L_LIVE : L_IDLE;
		w->sh = pp_slot(&p->wconf, i);
		c = (unsigned char *)w->sh + align_up(sizeof(struct pp_wshared), 128);
		w->sh->req = (px_ring *)c;
		c += align_up(reqsz, 128);
		w->sh->resp = (px_ring *)c;
		c += align_up(respsz, 128);
		w->sh->big = c;
		c += PP_NBIG * p->big_len;
		px__pp_slot_reset(w, &p->busy_dead);
		w->gen = 0;
	}
	px__arena_fini(&p->arena);
	px__arena_init(&p->arena, pp_slot(&p->wconf, p->nwcap), arena);
	return 0;
}

/* Forks the fork server, telling it to close other pools' sockets, and
 * registers this pool's socket for the servers of pools made later. */
static int start_fork_server(struct pp_pool *p)
{
	struct px__fs_conf conf = {
		.nslots = p->nwcap,
		.parent = getpid(),
		.hdr = p->hdr,
		.worker_main = px__pp_worker_main,
		.ctx = &p->wconf,
	};
	pthread_mutex_lock(&reg_lock);
	conf.close_fds = reg_fds;
	conf.nclose = reg_n;
	int r = px__fs_start(&conf, &p->fs_pid, &p->sock);
	if (!r)
		reg_add(p->sock);
	pthread_mutex_unlock(&reg_lock);
	return r;
}

/* Asks for every worker and waits until all are READY or one failed to
 * start. 0 or the failure's negative errno. */
static int start_workers(struct pp_pool *p)
{
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < p->nw; i++) {
		p->w[i].life = L_LIVE;
		p->live++;
		px__pp_fs_send(p, PX__FS_SPAWN, i, p->w[i].gen);
	}
	while (p->starting && !p->init_err)
		pthread_cond_wait(&p->state_cv, &p->lock);
	int r = p->init_err;
	pthread_mutex_unlock(&p->lock);
	return r;
}

static int pp_create(px_executor **out, const struct px__config *cfg)
{
	struct pp_pool *p = pool_new(cfg);
	if (!p)
		return -ENOMEM;
	int r = map_shared(p, cfg);
	if (!r)
		r = start_fork_server(p);
	if (r) {
		px__pp_free(p);
		return r;
	}
	p->starting = true;
	r = pthread_create(&p->collector, NULL, px__pp_collector_main, p);
	if (r) {
		pp_abort(p);
		return -r;
	}
	p->collector_started = true;
	r = start_workers(p);
	if (r) {
		pp_abort(p);
		return r;
	}
	*out = &p->ex;
	return 0;
}

/*
 * px_executor_resize(). Shrinking closes the request rings of the
 * highest-numbered live workers (L_DRAINING): they run out what their
 * windows hold and exit, and no task is handed to them meanwhile. Growing
 * takes back draining slots first (lowest ids first; such a slot is forked
 * again once it has exited, see handle_death), then forks workers into idle
 * slots or fresh ones up to nwcap. -ENOSPC when the slots cannot hold the
 * count.
 */
static int pp_resize(px_executor *ex, int workers)
{
	struct pp_pool *p = (struct pp_pool *)ex;
	int r = 0;
	pthread_mutex_lock(&p->lock);
	if (p->shutting || p->broken) {
		pthread_mutex_unlock(&p->lock);
		return PX_ESHUTDOWN;
	}
	int nw = p->nw, cur = 0, spare = p->nwcap - nw;
	for (int i = 0; i < nw; i++) {
		const struct pp_worker *w = &p->w[i];
		if (w_counted(w))
			cur++;
		else if (w->life == L_IDLE || w->life == L_DRAINING)
			spare++;
	}
	if (workers < cur) {
		for (int i = nw - 1; i >= 0 && cur > workers; i--) {
			struct pp_worker *w = &p->w[i];
			if (w->life == L_DRAINING && w->back) {
				w->back = false;
				cur--;
			} else if (w->life == L_LIVE) {
				w->life = L_DRAINING;
				px_ring_close(w->sh->req);
				px__pp_worker_wake(w->sh);
				cur--;
			}
		}
	} else if (workers > cur && workers - cur > spare) {
		r = -ENOSPC;
	} else {
		/* Lowest ids first: draining ones back, then idle or new. */
		for (int i = 0; i < p->nwcap && cur < workers; i++) {
			struct pp_worker *w = &p->w[i];
			if (i < nw && w->life == L_DRAINING && !w->back) {
				w->back = true;
				cur++;
				continue;
			}
			if (i < nw && w->life != L_IDLE)
				continue;
			w->life = L_LIVE;
			p->live++;
			cur++;
			px__pp_fs_send(p, PX__FS_SPAWN, w->id, w->gen);
			if (i >= p->nw)
				p->nw = i + 1;
		}
	}
	if (!r)
		__atomic_store_n(&p->ex.cfg.workers, workers, __ATOMIC_RELAXED);
	pump(p);
	pthread_mutex_unlock(&p->lock);
	return r;
}

const struct px__backend_ops px__process_backend = {
	.create = pp_create,
	.submit = px__pp_submit,
	.shutdown = pp_shutdown,
	.destroy = pp_destroy,
	.stats = pp_stats,
	.alloc = pp_alloc,
	.free = pp_free_mem,
	.resize = pp_resize,
	.wait_help = px__pp_wait_help,
};
