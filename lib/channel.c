/*
 * lib/channel.c - the completion channel: futures complete into an eventfd.
 *
 * Each attachment is one node on the future's completion list (struct
 * px__node, the mechanism px_wait() uses), so the future core needs no hook
 * of its own. Nodes are one cache line each, carved from chunks the channel
 * owns and recycled through a free list under ch->lock, so attaching and
 * draining cost no malloc in a steady state. The chunks (as many as the
 * most attachments outstanding at once needed) are freed by
 * px_channel_close(), which walks them to find every live node (f != NULL:
 * attached and not yet drained) and detach it. Once its future finishes, a
 * node goes on the `ready` stack: a Treiber stack that the completing
 * thread pushes without a lock and the drainer takes whole with one
 * exchange, then reverses into `local` (oldest first).
 *
 * Wake-ups: only the push that finds `ready` empty writes the eventfd. The
 * drainer reads (clears) the eventfd before it takes the stack, so a push
 * after the take finds the stack empty and writes again: no wake-up is
 * lost. At worst a write whose entry the drainer already took leaves the fd
 * readable with nothing to drain, once. When the caller's array fills up
 * with entries left in `local`, the drainer writes the eventfd itself
 * (once: `rearmed`) so the fd stays readable.
 *
 * Node lifetime: ch_fire() pushes the node, may write the eventfd, and only
 * then sets node.fired (release), its last touch of the node and the
 * channel. The drainer waits for `fired` before it puts a node it took back
 * on the free list, and px_channel_close() waits for it through
 * px__future_unlink(), so neither a node nor the channel is reused or freed
 * under a completion still using it.
 *
 * Lock order: ch->lock is a leaf. Nothing else is taken under it (no future
 * lock bit, no allocation that could call back), no user code runs under
 * it, and ch_fire() never takes it.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <parex/channel.h>

#include "future_internal.h"

struct ch_node {
	struct px__node node; /* first: the completion list's view */
	px_channel *ch;
	px_future *f;         /* the channel's reference; NULL: a free node */
	void *user;
	struct ch_node *ready_next; /* on `ready`, `local` or `free` */
} __attribute__((aligned(64)));

#define CHUNK_NODES 63
struct ch_chunk {
	struct ch_node nodes[CHUNK_NODES];
	struct ch_chunk *next;
};

struct px_channel {
	/* Written by completing threads: a line of its own. */
	alignas(64) _Atomic(struct ch_node *) ready;

	/* The consumer side, under lock. */
	alignas(64) pthread_mutex_t lock;
	struct ch_chunk *chunks;  /* every node lives in one of these */
	struct ch_node *free;     /* nodes to reuse */
	struct ch_node *local;    /* taken from `ready`, oldest first */
	size_t count;             /* live nodes: attached, not yet drained */
	bool rearmed;             /* we wrote the eventfd since our last read */
	int efd;
};

static void efd_signal(int efd)
{
	uint64_t one = 1;
	/* Fails only when the counter would overflow (it is readable then). */
	ssize_t r = write(efd, &one, sizeof(one));
	(void)r;
}

static void efd_clear(int efd)
{
	uint64_t v;
	/* Non-blocking: EAGAIN when it was clear already. */
	ssize_t r = read(efd, &v, sizeof(v));
	(void)r;
}

/* Runs in the completing thread (or in px_channel_add for a finished
 * future), once per node. */
static void ch_fire(struct px__node *n, px_future *f)
{
	(void)f;
	struct ch_node *c = (struct ch_node *)n;
	px_channel *ch = c->ch;
	struct ch_node *head = atomic_load_explicit(&ch->ready,
						    memory_order_relaxed);
	do
		c->ready_next = head;
	/* release: pairs with the drainer's acquire exchange, which then sees
	 * ready_next and, through this thread's completion, the outcome. */
	while (!atomic_compare_exchange_weak_explicit(&ch->ready, &head, c,
						      memory_order_release,
						      memory_order_relaxed));
	if (!head)
		efd_signal(ch->efd);
	/* Last touch of the node and the channel; pairs with the acquire
	 * loads in wait_fired() and px__future_unlink(). */
	atomic_store_explicit(&n->fired, 1, memory_order_release);
}

/* Waits until ch_fire() is done with a node it pushed: a few instructions,
 * unless its thread was preempted in between. */
static void wait_fired(struct ch_node *c)
{
	if (atomic_load_explicit(&c->node.fired, memory_order_acquire))
		return;
	struct px__spin spin;
	px__spin_init(&spin, INT64_MAX / 2);
	while (!atomic_load_explicit(&c->node.fired, memory_order_acquire))
		px__spin_step(&spin);
}

PX_API int px_channel_create(px_channel **out)
{
	if (!out)
		return -EINVAL;
	px_channel *ch = aligned_alloc(64, (sizeof(*ch) + 63) & ~(size_t)63);
	if (!ch)
		return -ENOMEM;
	ch->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ch->efd < 0) {
		int e = errno;
		free(ch);
		return -e;
	}
	atomic_init(&ch->ready, NULL);
	pthread_mutex_init(&ch->lock, NULL);
	ch->chunks = NULL;
	ch->free = NULL;
	ch->local = NULL;
	ch->count = 0;
	ch->rearmed = false;
	*out = ch;
	return 0;
}

PX_API int px_channel_fd(const px_channel *ch)
{
	return ch ? ch->efd : -EINVAL;
}

PX_API int px_channel_add(px_channel *ch, px_future *f, void *user)
{
	if (!ch || !f)
		return -EINVAL;
	pthread_mutex_lock(&ch->lock);
	if (!ch->free) {
		/* Allocate outside the lock: other threads may add and drain
		 * meanwhile. */
		pthread_mutex_unlock(&ch->lock);
		struct ch_chunk *k = aligned_alloc(64, sizeof(*k));
		if (!k)
			return -ENOMEM;
		for (int i = 0; i < CHUNK_NODES; i++) {
			k->nodes[i].f = NULL;
			k->nodes[i].ready_next = i + 1 < CHUNK_NODES
							 ? &k->nodes[i + 1] : NULL;
		}
		pthread_mutex_lock(&ch->lock);
		k->next = ch->chunks;
		ch->chunks = k;
		k->nodes[CHUNK_NODES - 1].ready_next = ch->free;
		ch->free = &k->nodes[0];
	}
	struct ch_node *c = ch->free;
	ch->free = c->ready_next;
	c->f = px_future_retain(f); /* live from here: close finds it */
	ch->count++;
	pthread_mutex_unlock(&ch->lock);
	/* px__future_link() leaves `linked` alone when the future already
	 * finished, and px__future_unlink() reads it. */
	c->node.next = c->node.prev = NULL;
	c->node.linked = false;
	c->node.fire = ch_fire;
	c->ch = ch;
	c->user = user;
	/* Once linked, the node may fire and be drained and freed by another
	 * thread at any moment: do not touch it after a successful link. */
	if (!px__future_link(f, &c->node))
		ch_fire(&c->node, f); /* already finished: ready now */
	return 0;
}

/* Moves the ready stack to `local`, oldest push first. Under lock. */
static void take_ready(px_channel *ch)
{
	/* acquire: pairs with ch_fire()'s release push. */
	struct ch_node *s = atomic_exchange_explicit(&ch->ready, NULL,
						     memory_order_acquire);
	struct ch_node *rev = NULL;
	while (s) {
		struct ch_node *nx = s->ready_next;
		s->ready_next = rev;
		rev = s;
		s = nx;
	}
	ch->local = rev;
}

PX_API int px_channel_drain(px_channel *ch, px_channel_event *out, size_t n)
{
	if (!ch || (!out && n))
		return -EINVAL;
	if (n > INT_MAX)
		n = INT_MAX;
	size_t k = 0;
	bool took = false;
	pthread_mutex_lock(&ch->lock);
	while (k < n) {
		if (!ch->local) {
			/* One take per call bounds the syscalls. Clear the fd
			 * before taking: a later push finds the stack empty
			 * and signals again. */
			if (took)
				break;
			took = true;
			efd_clear(ch->efd);
			ch->rearmed = false;
			take_ready(ch);
			if (!ch->local)
				break;
		}
		struct ch_node *c = ch->local;
		ch->local = c->ready_next;
		wait_fired(c);
		out[k].future = c->f;
		out[k].user = c->user;
		k++;
		c->f = NULL;
		c->ready_next = ch->free;
		ch->free = c;
	}
	ch->count -= k;
	if (ch->local && !ch->rearmed) {
		/* Entries left for the next call: keep the fd readable. */
		efd_signal(ch->efd);
		ch->rearmed = true;
	}
	pthread_mutex_unlock(&ch->lock);
	return (int)k;
}

PX_API size_t px_channel_count(const px_channel *ch)
{
	if (!ch)
		return 0;
	px_channel *m = (px_channel *)ch;
	pthread_mutex_lock(&m->lock);
	size_t n = m->count;
	pthread_mutex_unlock(&m->lock);
	return n;
}

PX_API void px_channel_close(px_channel *ch)
{
	if (!ch)
		return;
	/* No other call runs now (the caller's promise); the lock only
	 * orders this thread after the last one. */
	pthread_mutex_lock(&ch->lock);
	struct ch_chunk *chunks = ch->chunks;
	ch->chunks = NULL;
	pthread_mutex_unlock(&ch->lock);
	/* Every live node is linked to its future, or fired (on `ready` or
	 * in `local`), or firing in some thread. Unlinking stops the first
	 * kind and waits out the last (splicing it out when this thread is
	 * the one firing, from a done callback), so afterwards no completion
	 * touches the nodes or the channel. Done outside the lock: it takes
	 * the futures' lock bits. */
	while (chunks) {
		struct ch_chunk *next = chunks->next;
		for (int i = 0; i < CHUNK_NODES; i++) {
			struct ch_node *c = &chunks->nodes[i];
			if (!c->f)
				continue;
			px__future_unlink(c->f, &c->node);
			px_future_release(c->f);
		}
		free(chunks);
		chunks = next;
	}
	close(ch->efd);
	pthread_mutex_destroy(&ch->lock);
	free(ch);
}
