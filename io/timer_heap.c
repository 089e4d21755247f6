/*
 * io/timer_heap.c - the threads backend's timer heap (timer_heap.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "timer_heap.h"

int px__io_theap_push(struct px__io_theap *h, int64_t when, void *item)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct px__io_tent *v = realloc(h->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	size_t i = h->n++;
	while (i && h->v[(i - 1) / 2].when > when) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = (struct px__io_tent){ when, item };
	return 0;
}

void *px__io_theap_pop(struct px__io_theap *h)
{
	void *item = h->v[0].item;
	struct px__io_tent last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1].when < h->v[c].when)
			c++;
		if (h->v[c].when >= last.when)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return item;
}

void px__io_theap_free(struct px__io_theap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
