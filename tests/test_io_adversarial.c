/*
 * tests/test_io_adversarial.c - the I/O layer under races and odd uses:
 * cancel and deadlines racing completion, destroy with operations in flight
 * from another thread while callbacks start more, futures cancelled while
 * their context is destroyed, cancel in a forked child, an fd number reused
 * while an old operation waits on it, replies that exactly fill the buffer,
 * MSG_WAITALL, submitters racing a sleeping reaper, and threads waiting
 * on I/O futures (which spin in the context's wait_help while the reaper
 * works) racing completion, deadlines, cancel and destroy.
 *
 * Each scenario runs in a forked child with an alarm and reports through its
 * exit status (0 sound, a small number naming the failed check, SIGALRM a
 * hang), so a hang or crash fails one test instead of the program. CTest
 * runs this program twice, with PAREX_IO=uring and PAREX_IO=threads.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <parex/io.h>

#include "netutil.h"
#include "test_util.h"

#define CHECK(cond, code)                                                    \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "check %d failed: %s (line %d)\n",   \
				(code), #cond, __LINE__);                    \
			return (code);                                       \
		}                                                            \
	} while (0)

/* Cancel racing completion ------------------------------------------------ */

struct racer {
	int fd;
	px_future *f;
	_Atomic int go;
	bool cancel; /* else write */
};

static void *race_thread(void *p)
{
	struct racer *r = p;
	while (!atomic_load(&r->go))
		;
	if (r->cancel)
		px_future_cancel(r->f, PX_CANCEL_RUNNING);
	else if (write(r->fd, "z", 1) != 1)
		abort();
	return NULL;
}

/*
 * A recv whose data arrives while it is being cancelled ends exactly once:
 * with the byte, or cancelled with the byte still in the socket.
 */
static int cancel_races_completion(void)
{
	px_io *io = io_new();
	long n = test_scaled(300);
	long done = 0, cancelled = 0;
	for (long i = 0; i < n; i++) {
		int sp[2];
		CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 1);
		char c = 0;
		px_future *f;
		CHECK(px_io_recv(io, sp[0], &c, 1, 0, NULL, &f) == 0, 2);
		struct racer w = { .fd = sp[1], .f = f }, k = { .f = f,
								 .cancel = true };
		pthread_t tw, tk;
		pthread_create(&tw, NULL, race_thread, &w);
		pthread_create(&tk, NULL, race_thread, &k);
		atomic_store(&w.go, 1);
		atomic_store(&k.go, 1);
		pthread_join(tw, NULL);
		pthread_join(tk, NULL);
		CHECK(px_future_wait(f, 10 * PX_SEC) == 0, 3);
		px_future_state_get(f);
		char left = 0;
		ssize_t m = recv(sp[0], &left, 1, MSG_DONTWAIT);
		if (px_future_state_get(f) == PX_FUTURE_DONE) {
			int64_t v;
			CHECK(px_future_get_i64(f, 0, &v) == 0 && v == 1, 4);
			CHECK(c == 'z' && m < 0, 5);
			done++;
		} else {
			CHECK(px_future_error(f) == -ECANCELED, 6);
			CHECK(m == 1 && left == 'z', 7);
			cancelled++;
		}
		/* A second cancel of a finished future changes nothing. */
		int cr = px_future_cancel(f, PX_CANCEL_RUNNING);
		CHECK(cr == 0 || cr == -EBUSY, 8);
		px_future_release(f);
		close(sp[0]);
		close(sp[1]);
	}
	CHECK(done + cancelled == n, 9);
	px_io_destroy(io);
	return 0;
}

/*
 * A deadline racing the data: the future ends once, with the byte or with
 * -ETIMEDOUT and the byte left in the socket.
 */
static int deadline_races_completion(void)
{
	px_io *io = io_new();
	long n = test_scaled(200);
	for (long i = 0; i < n; i++) {
		int sp[2];
		CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 1);
		char c = 0;
		px_future *f;
		px_io_opts o = { .timeout_ns = (i % 5) * 20000 + 1 };
		CHECK(px_io_recv(io, sp[0], &c, 1, 0, &o, &f) == 0, 2);
		struct racer w = { .fd = sp[1], .f = f, .go = 1 };
		pthread_t tw;
		pthread_create(&tw, NULL, race_thread, &w);
		pthread_join(tw, NULL);
		CHECK(px_future_wait(f, 10 * PX_SEC) == 0, 3);
		char left = 0;
		ssize_t m = recv(sp[0], &left, 1, MSG_DONTWAIT);
		int err = px_future_error(f);
		if (err == 0) {
			CHECK(c == 'z' && m < 0, 4);
		} else {
			CHECK(err == -ETIMEDOUT, 5);
			CHECK(px_future_state_get(f) == PX_FUTURE_DONE, 6);
			CHECK(m == 1 && left == 'z', 7);
		}
		px_future_release(f);
		close(sp[0]);
		close(sp[1]);
	}
	px_io_destroy(io);
	return 0;
}

/* Destroy --------------------------------------------------------------------- */

struct chains {
	px_io *io;
	_Atomic long started, ran, shut;
};

static void chain_step(px_future *f, void *arg)
{
	(void)f;
	struct chains *c = arg;
	atomic_fetch_add(&c->ran, 1);
	px_future *nf;
	int r = px_io_nop(c->io, &nf);
	if (r == 0) {
		atomic_fetch_add(&c->started, 1);
		if (px_future_on_done(nf, chain_step, c))
			abort();
		px_future_release(nf);
	} else if (r == PX_ESHUTDOWN) {
		atomic_fetch_add(&c->shut, 1);
	} else {
		abort();
	}
}

struct destroyer {
	px_io *io;
};

static void *destroy_thread(void *p)
{
	struct destroyer *d = p;
	px_io_destroy(d->io);
	return NULL;
}

/*
 * Thousands of operations in flight (recvs that never complete, sleeps,
 * callback chains that restart themselves) and the context destroyed by a
 * thread that did not create it: every future ends, every callback that was
 * registered runs exactly once.
 */
static int destroy_from_other_thread_with_chains(void)
{
	px_io *io = io_new();
	long n = test_scaled(2000);
	int sp[2];
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 1);
	px_future **fs = calloc((size_t)n * 2, sizeof(*fs));
	static char buf[1];
	for (long i = 0; i < n; i++) {
		CHECK(px_io_recv(io, sp[0], buf, 1, 0, NULL, &fs[2 * i]) == 0, 2);
		CHECK(px_io_sleep(io, 60 * PX_SEC, &fs[2 * i + 1]) == 0, 3);
	}
	struct chains c = { .io = io };
	long nch = test_scaled(64);
	for (long i = 0; i < nch; i++) {
		px_future *f;
		CHECK(px_io_nop(io, &f) == 0, 4);
		atomic_fetch_add(&c.started, 1);
		CHECK(px_future_on_done(f, chain_step, &c) == 0, 5);
		px_future_release(f);
	}
	usleep(2000);
	struct destroyer d = { io };
	pthread_t t;
	pthread_create(&t, NULL, destroy_thread, &d);
	pthread_join(t, NULL);
	for (long i = 0; i < 2 * n; i++) {
		CHECK(px_future_is_done(fs[i]), 6);
		CHECK(px_future_state_get(fs[i]) == PX_FUTURE_CANCELLED, 7);
		px_future_release(fs[i]);
	}
	free(fs);
	CHECK(atomic_load(&c.ran) == atomic_load(&c.started), 8);
	CHECK(atomic_load(&c.shut) == nch, 9);
	close(sp[0]);
	close(sp[1]);
	return 0;
}

/* A future released by its holder while in flight: destroy still ends it and
 * frees it (the sanitizer builds check the leak). */
static int release_in_flight(void)
{
	px_io *io = io_new();
	int sp[2];
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 1);
	static char buf[4];
	for (int i = 0; i < 100; i++) {
		px_future *f;
		CHECK(px_io_recv(io, sp[0], buf, 1, 0, NULL, &f) == 0, 2);
		px_future_release(f);
		CHECK(px_io_sleep(io, PX_SEC, &f) == 0, 3);
		px_future_release(f);
	}
	CHECK(write(sp[1], "a", 1) == 1, 4);
	px_io_destroy(io);
	close(sp[0]);
	close(sp[1]);
	return 0;
}

struct canceller {
	px_future **fs;
	long n;
	_Atomic int go;
};

static void *cancel_all_thread(void *p)
{
	struct canceller *c = p;
	atomic_store(&c->go, 1);
	for (long i = c->n - 1; i >= 0; i--)
		px_future_cancel(c->fs[i], PX_CANCEL_RUNNING);
	return NULL;
}

/*
 * Futures cancelled by one thread while another destroys their context:
 * px_future_cancel() on a future one holds must stay safe whatever the
 * context does meanwhile.
 */
static int cancel_while_destroying(void)
{
	long rounds = test_scaled(200);
	enum { N = 64 };
	for (long r = 0; r < rounds; r++) {
		px_io *io = io_new();
		int sp[2];
		CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 1);
		static char buf[1];
		px_future *fs[N];
		for (int i = 0; i < N; i++)
			CHECK(px_io_recv(io, sp[0], buf, 1, 0, NULL, &fs[i]) == 0,
			      2);
		struct canceller c = { .fs = fs, .n = N };
		pthread_t t;
		pthread_create(&t, NULL, cancel_all_thread, &c);
		while (!atomic_load(&c.go))
			;
		px_io_destroy(io);
		pthread_join(t, NULL);
		for (int i = 0; i < N; i++) {
			CHECK(px_future_state_get(fs[i]) == PX_FUTURE_CANCELLED, 3);
			px_future_release(fs[i]);
		}
		close(sp[0]);
		close(sp[1]);
	}
	return 0;
}

/* fork ------------------------------------------------------------------------ */

/*
 * A child that cancels a future it inherited must get PX_EFORKED (or a
 * no-op), not touch the parent's ring (which it does not even map) or a
 * lock some parent thread held at fork time.
 */
static int cancel_in_forked_child(void)
{
	px_io *io = io_new();
	int sp[2];
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 1);
	char c;
	px_future *f;
	CHECK(px_io_recv(io, sp[0], &c, 1, 0, NULL, &f) == 0, 2);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0, 3);
	if (pid == 0) {
		int r = px_future_cancel(f, PX_CANCEL_RUNNING);
		_exit(r == PX_EFORKED ? 0 : 1);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid, 4);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, 5);
	/* The parent's operation is untouched. */
	CHECK(write(sp[1], "p", 1) == 1, 6);
	int64_t v;
	CHECK(px_future_get_i64(f, 10 * PX_SEC, &v) == 0 && v == 1 && c == 'p',
	      7);
	px_future_release(f);
	px_io_destroy(io);
	close(sp[0]);
	close(sp[1]);
	return 0;
}

/* Descriptors ------------------------------------------------------------------ */

/* Open descriptors of this process that refer to the same socket as fd,
 * by their /proc links (fstat on the backend's own descriptors would race
 * with their close, as ThreadSanitizer points out). */
static int same_file_fds(int fd)
{
	char path[300], ref[128], link[128];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t rl = readlink(path, ref, sizeof(ref) - 1);
	if (rl < 0)
		return -1;
	ref[rl] = 0;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t l = readlink(path, link, sizeof(link) - 1);
		if (l == rl && !memcmp(link, ref, (size_t)rl))
			n++;
	}
	closedir(d);
	return n;
}

/*
 * An operation waiting on a socket keeps that socket, as io_uring does once
 * it has issued the request: after close(fd) and a new socket given the same
 * number, the old recv must read the old socket's data, not steal the new
 * one's.
 */
static int fd_reuse_while_waiting(void)
{
	px_io *io = io_new();
	int a[2], b[2];
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 1);
	char c = 0;
	px_future *f, *n;
	CHECK(px_io_recv(io, a[0], &c, 1, 0, NULL, &f) == 0, 2);
	/* Wait until the recv is really waiting in the backend: on io_uring
	 * a later nop completing means the reaper issued both; the threads
	 * backend parks it on a dup of the descriptor. */
	CHECK(px_io_nop(io, &n) == 0, 3);
	CHECK(px_future_wait(n, 10 * PX_SEC) == 0, 4);
	px_future_release(n);
	if (px_io_backend_get(io) == PX_IO_THREADS) {
		for (int i = 0; i < 5000 && same_file_fds(a[0]) < 2; i++)
			usleep(1000);
		CHECK(same_file_fds(a[0]) >= 2, 5);
		/* The submit takes the backend lock the worker held while it
		 * parked the recv after trying a[0]: that orders the try
		 * before the close below, for ThreadSanitizer too. */
		CHECK(px_io_nop(io, &n) == 0, 3);
		CHECK(px_future_wait(n, 10 * PX_SEC) == 0, 4);
		px_future_release(n);
	}
	int num = a[0];
	close(a[0]);
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 6);
	if (b[0] != num) {
		CHECK(dup2(b[0], num) == num, 7);
		close(b[0]);
		b[0] = num;
	}
	CHECK(write(b[1], "B", 1) == 1, 8);
	CHECK(write(a[1], "A", 1) == 1, 9);
	int64_t v;
	CHECK(px_future_get_i64(f, 10 * PX_SEC, &v) == 0 && v == 1, 10);
	CHECK(c == 'A', 11);
	char left = 0;
	CHECK(recv(b[0], &left, 1, MSG_DONTWAIT) == 1 && left == 'B', 12);
	px_future_release(f);
	px_io_destroy(io);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	return 0;
}

/* MSG_WAITALL: the kernel's meaning on both backends (io_uring retries a
 * short stream recv or send until all len bytes or EOF). */
static int msg_waitall(void)
{
	px_io *io = io_new();
	int sp[2];
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 1);
	char buf[4] = { 0 };
	px_future *f;
	CHECK(px_io_recv(io, sp[0], buf, 4, MSG_WAITALL, NULL, &f) == 0, 2);
	CHECK(write(sp[1], "ab", 2) == 2, 3);
	CHECK(px_future_wait(f, 50 * PX_MSEC) == -ETIMEDOUT, 4);
	CHECK(write(sp[1], "cd", 2) == 2, 5);
	int64_t v;
	CHECK(px_future_get_i64(f, 10 * PX_SEC, &v) == 0 && v == 4, 6);
	CHECK(!memcmp(buf, "abcd", 4), 7);
	px_future_release(f);
	/* EOF before the length: what arrived. */
	CHECK(px_io_recv(io, sp[0], buf, 4, MSG_WAITALL, NULL, &f) == 0, 8);
	CHECK(write(sp[1], "x", 1) == 1, 9);
	shutdown(sp[1], SHUT_WR);
	CHECK(px_future_get_i64(f, 10 * PX_SEC, &v) == 0 && v == 1, 10);
	px_future_release(f);
	px_io_destroy(io);
	close(sp[0]);
	close(sp[1]);
	return 0;
}

/* A send of more than 4 GiB moves what fits in the socket, as send(2) would,
 * and not len modulo 2^32 bytes. */
static int huge_send_len(void)
{
	px_io *io = io_new();
	size_t len = ((size_t)1 << 32) + 16;
	void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
					   MAP_NORESERVE, -1, 0);
	CHECK(p != MAP_FAILED, 1);
	int sp[2];
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 2);
	px_future *f;
	CHECK(px_io_send(io, sp[0], p, len, MSG_DONTWAIT, NULL, &f) == 0, 3);
	int64_t v = -1;
	CHECK(px_future_get_i64(f, 10 * PX_SEC, &v) == 0, 4);
	CHECK(v > 16, 5);
	px_future_release(f);
	px_io_destroy(io);
	munmap(p, len);
	close(sp[0]);
	close(sp[1]);
	return 0;
}

/* Request client -------------------------------------------------------------- */

struct one_shot {
	int ls;
	const char *reply;
	size_t len;
};

/* Accepts one connection, reads the request, sends the reply, closes. */
static void *one_shot_server(void *p)
{
	struct one_shot *s = p;
	int c = accept(s->ls, NULL, NULL);
	if (c < 0)
		return NULL;
	char req[64];
	if (recv(c, req, sizeof(req), 0) < 0) {
		/* the client may have gone */
	}
	if (s->len && send(c, s->reply, s->len, MSG_NOSIGNAL) < 0) {
		/* likewise */
	}
	close(c);
	return NULL;
}

static int request_with(px_io *io, const char *reply, size_t len, size_t cap,
			size_t expect, int64_t *res, char *out)
{
	int ls;
	uint16_t port;
	if (px_io_tcp_listen(NULL, 0, 4, &ls, &port))
		return -1;
	int fl = fcntl(ls, F_GETFL);
	fcntl(ls, F_SETFL, fl & ~O_NONBLOCK);
	struct one_shot s = { ls, reply, len };
	pthread_t t;
	pthread_create(&t, NULL, one_shot_server, &s);
	struct sockaddr_in sa = loopback(port);
	px_io_request_opts o = { .expect = expect, .timeout_ns = 10 * PX_SEC };
	px_future *f;
	int r = px_io_request(io, (struct sockaddr *)&sa, sizeof(sa), "q", 1,
			      out, cap, &o, &f);
	if (!r) {
		r = px_future_get_i64(f, 20 * PX_SEC, res);
		px_future_release(f);
	}
	pthread_join(t, NULL);
	close(ls);
	return r;
}

/*
 * Replies at the edges of the buffer: exactly reply_cap bytes then close is
 * a whole reply; one more byte is -EMSGSIZE; a peer that closes short of
 * `expect` is -ECONNRESET; one that sends more than `expect` gives expect.
 */
static int request_reply_edges(void)
{
	px_io *io = io_new();
	char buf[16];
	int64_t v = -1;
	CHECK(request_with(io, "0123456789", 10, 10, 0, &v, buf) == 0, 1);
	CHECK(v == 10 && !memcmp(buf, "0123456789", 10), 2);
	CHECK(request_with(io, "0123456789a", 11, 10, 0, &v, buf) == -EMSGSIZE,
	      3);
	CHECK(request_with(io, "0123", 4, 10, 8, &v, buf) == -ECONNRESET, 4);
	CHECK(request_with(io, "0123456789", 10, 16, 4, &v, buf) == 0 && v == 4,
	      5);
	CHECK(request_with(io, "", 0, 16, 0, &v, buf) == 0 && v == 0, 6);
	px_io_destroy(io);
	return 0;
}

/* Submitters and the reaper ----------------------------------------------------- */

struct sub {
	px_io *io;
	long n;
	_Atomic long *ok;
};

static void *submit_thread(void *p)
{
	struct sub *s = p;
	for (long i = 0; i < s->n; i++) {
		px_future *f;
		if (px_io_nop(s->io, &f))
			return NULL;
		/* One at a time: each wait finds the reaper asleep. */
		if (px_future_wait(f, 10 * PX_SEC) == 0)
			atomic_fetch_add(s->ok, 1);
		px_future_release(f);
		if (i % 64 == 0)
			usleep(50);
	}
	return NULL;
}

/* Many threads submit one operation at a time while the reaper sleeps: no
 * wake-up may be lost (a lost one shows as a 10 s wait). It caught one:
 * a submitter's single CAS SLEEPING -> WOKEN failed when the reaper moved
 * SLEEPING -> SUBMITTING for an enter that had not seen the submitter's SQE,
 * so nobody woke that enter (about one run in fifteen of this case). */
static int submitters_wake_sleeping_reaper(void)
{
	px_io *io = io_new();
	enum { T = 8 };
	_Atomic long ok = 0;
	struct sub s[T];
	pthread_t t[T];
	long n = test_scaled(3000);
	for (int i = 0; i < T; i++) {
		s[i] = (struct sub){ io, n, &ok };
		pthread_create(&t[i], NULL, submit_thread, &s[i]);
	}
	for (int i = 0; i < T; i++)
		pthread_join(t[i], NULL);
	CHECK(atomic_load(&ok) == T * n, 1);
	px_io_stats st;
	CHECK(px_io_stats_get(io, &st) == 0 && st.inflight == 0, 2);
	CHECK(st.completed == st.ops && st.ops == (uint64_t)(T * n), 3);
	px_io_destroy(io);
	return 0;
}

/* Batches: nesting, an unbalanced end, and another context inside one. */
static int batch_nesting(void)
{
	px_io *io = io_new(), *other = io_new();
	px_future *f[3];
	CHECK(px_io_batch_end(io) == -EINVAL, 1);
	CHECK(px_io_batch_begin(io) == 0, 2);
	CHECK(px_io_batch_begin(io) == 0, 3);
	CHECK(px_io_batch_begin(other) == -EBUSY, 4);
	CHECK(px_io_nop(io, &f[0]) == 0, 5);
	CHECK(px_io_batch_end(other) == -EINVAL, 6);
	CHECK(px_io_batch_end(io) == 0, 7);
	CHECK(px_io_nop(io, &f[1]) == 0, 8);
	/* Another context is not held back by this batch. */
	CHECK(px_io_nop(other, &f[2]) == 0, 9);
	CHECK(px_future_wait(f[2], 10 * PX_SEC) == 0, 10);
	CHECK(px_io_batch_end(io) == 0, 11);
	CHECK(px_io_batch_end(io) == -EINVAL, 12);
	for (int i = 0; i < 3; i++) {
		int64_t v;
		CHECK(px_future_get_i64(f[i], 10 * PX_SEC, &v) == 0 && v == 0, 13);
		px_future_release(f[i]);
	}
	px_io_destroy(io);
	px_io_destroy(other);
	return 0;
}

/* Waiters that help ------------------------------------------------------------ */

/*
 * A file of n 4 KiB blocks in which 32-bit word w holds w, so every read
 * can be checked against its offset. Unlinked at once.
 */
static int pattern_file(long blocks)
{
	char path[] = "/tmp/px_test_io_adv_XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	unlink(path);
	uint32_t *blk = malloc(4096);
	for (long b = 0; b < blocks; b++) {
		for (int j = 0; j < 1024; j++)
			blk[j] = (uint32_t)(b * 1024 + j);
		if (pwrite(fd, blk, 4096, (off_t)b * 4096) != 4096) {
			free(blk);
			close(fd);
			return -1;
		}
	}
	free(blk);
	return fd;
}

static void count_done(px_future *f, void *arg)
{
	(void)f;
	atomic_fetch_add((_Atomic int *)arg, 1);
}

struct batcher {
	px_io *io;
	int fd;
	long blocks, rounds;
	int id;
	long bad; /* first failed check, 0: none */
};

/*
 * Batches of 32 reads, each followed by px_wait(ALL): the pattern of
 * bench_io (c), where the waiting thread spins in the context's wait_help
 * while the reaper submits. Every read must come back once, whole, with its
 * own block's words, and its done callback must run exactly once.
 */
static void *batch_reader(void *p)
{
	struct batcher *b = p;
	enum { QD = 32 };
	uint32_t *buf = aligned_alloc(4096, QD * 4096);
	_Atomic int ran[QD];
	uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(b->id + 1);
	for (long r = 0; r < b->rounds && !b->bad; r++) {
		px_future *fs[QD];
		long blk[QD];
		px_io_batch_begin(b->io);
		for (int i = 0; i < QD; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			blk[i] = (long)(x % (uint64_t)b->blocks);
			atomic_init(&ran[i], 0);
			px_io_opts o = { .done = count_done, .done_arg = &ran[i] };
			if (px_io_read(b->io, b->fd, buf + i * 1024, 4096,
				       blk[i] * 4096, &o, &fs[i])) {
				b->bad = 1;
				px_io_batch_end(b->io);
				for (int k = 0; k < i; k++) {
					px_future_wait(fs[k], 10 * PX_SEC);
					px_future_release(fs[k]);
				}
				free(buf);
				return NULL;
			}
		}
		px_io_batch_end(b->io);
		if (px_wait(fs, QD, PX_ALL_COMPLETED, 10 * PX_SEC, NULL) != QD)
			b->bad = 2;
		for (int i = 0; i < QD; i++) {
			int64_t v = -1;
			if (px_future_get_i64(fs[i], 0, &v) || v != 4096)
				b->bad = 3;
			else if (buf[i * 1024] != (uint32_t)(blk[i] * 1024) ||
				 buf[i * 1024 + 1023] !=
					 (uint32_t)(blk[i] * 1024 + 1023))
				b->bad = 4;
			px_future_release(fs[i]);
		}
		/* The callbacks run after the state is published: wait for
		 * the last ones, then each must have run exactly once. */
		for (int i = 0; i < QD; i++) {
			for (int t = 0; t < 100000 && !atomic_load(&ran[i]); t++)
				sched_yield();
			if (atomic_load(&ran[i]) != 1)
				b->bad = 5;
		}
	}
	free(buf);
	return NULL;
}

/* Several threads wait per batch on one context at once (each spinning in
 * wait_help, racing the reaper and each other): every operation completes
 * exactly once, with the right data, and the counters agree. */
static int waiters_per_batch_exactly_once(void)
{
	px_io *io = io_new();
	long blocks = 256;
	int fd = pattern_file(blocks);
	CHECK(fd >= 0, 1);
	enum { T = 3 };
	struct batcher b[T];
	pthread_t t[T];
	long rounds = test_scaled(400);
	for (int i = 0; i < T; i++) {
		b[i] = (struct batcher){ io, fd, blocks, rounds, i, 0 };
		pthread_create(&t[i], NULL, batch_reader, &b[i]);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(t[i], NULL);
		if (b[i].bad)
			fprintf(stderr, "reader %d: check %ld\n", i, b[i].bad);
		CHECK(!b[i].bad, 10 + (int)b[i].bad);
	}
	px_io_stats st;
	CHECK(px_io_stats_get(io, &st) == 0, 2);
	CHECK(st.ops == (uint64_t)(T * rounds * 32), 3);
	CHECK(st.completed == st.ops && st.inflight == 0, 4);
	px_io_destroy(io);
	close(fd);
	return 0;
}

/*
 * Keeps the reaper busy, so that waiters spin in wait_help rather than
 * sleep: a chain of 8-byte reads of /dev/zero, each started from the
 * previous one's done callback (in the reaper), until told to stop or until
 * a start fails because the context is being destroyed.
 */
struct chain {
	px_io *io;
	int fd;
	char buf[8];
	_Atomic int stop, ended;
	_Atomic long rounds;
};

static void chain_next(px_future *f, void *arg)
{
	(void)f;
	struct chain *c = arg;
	atomic_fetch_add(&c->rounds, 1);
	px_io_opts o = { .done = chain_next, .done_arg = c };
	px_future *nf;
	if (atomic_load(&c->stop) ||
	    px_io_read(c->io, c->fd, c->buf, sizeof(c->buf), 0, &o, &nf)) {
		atomic_store(&c->ended, 1);
		return;
	}
	px_future_release(nf);
}

static int chain_start(struct chain *c, px_io *io)
{
	memset(c, 0, sizeof(*c));
	c->io = io;
	c->fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	if (c->fd < 0)
		return -1;
	px_io_opts o = { .done = chain_next, .done_arg = c };
	px_future *f;
	if (px_io_read(io, c->fd, c->buf, sizeof(c->buf), 0, &o, &f))
		return -1;
	px_future_release(f);
	return 0;
}

/* Waits for the chain to end (stopped, or its context destroyed). */
static void chain_join(struct chain *c)
{
	atomic_store(&c->stop, 1);
	while (!atomic_load(&c->ended))
		usleep(100);
	close(c->fd);
}

/*
 * Deadlines while the reaper is busy, so the waiter spins in wait_help: a
 * wait on a sleep that outlasts it still times out on time, for one future
 * and for px_wait's every mode; FIRST_COMPLETED still returns as soon as a
 * quick operation finishes beside a slow one.
 */
static int waits_with_deadlines_while_reaper_busy(void)
{
	px_io *io = io_new();
	struct chain c;
	CHECK(chain_start(&c, io) == 0, 20);
	long rounds = test_scaled(50);
	for (long r = 0; r < rounds; r++) {
		px_future *slow, *quick;
		CHECK(px_io_sleep(io, 30 * PX_SEC, &slow) == 0, 1);
		int64_t t0 = test_now_ns();
		CHECK(px_future_wait(slow, 2 * PX_MSEC) == -ETIMEDOUT, 2);
		int64_t el = test_now_ns() - t0;
		CHECK(el >= 2 * PX_MSEC && el < 2 * PX_SEC, 3);
		t0 = test_now_ns();
		CHECK(px_wait(&slow, 1, PX_ALL_COMPLETED, 2 * PX_MSEC, NULL) ==
			      -ETIMEDOUT,
		      4);
		CHECK(test_now_ns() - t0 < 2 * PX_SEC, 5);
		CHECK(px_io_sleep(io, PX_MSEC, &quick) == 0, 6);
		px_future *two[2] = { slow, quick };
		bool done[2];
		t0 = test_now_ns();
		CHECK(px_wait(two, 2, PX_FIRST_COMPLETED, 10 * PX_SEC, done) == 1,
		      7);
		CHECK(done[1] && !done[0], 8);
		CHECK(test_now_ns() - t0 < 2 * PX_SEC, 9);
		CHECK(px_wait(two, 2, PX_FIRST_EXCEPTION, 2 * PX_MSEC, NULL) ==
			      -ETIMEDOUT,
		      10);
		/* Cancelled while nobody waits; a wait then returns at once. */
		CHECK(px_future_cancel(slow, PX_CANCEL_RUNNING) == 0, 11);
		CHECK(px_future_wait(slow, 10 * PX_SEC) == 0, 12);
		CHECK(px_future_state_get(slow) == PX_FUTURE_CANCELLED, 13);
		px_future_release(slow);
		px_future_release(quick);
	}
	chain_join(&c);
	CHECK(atomic_load(&c.rounds) > 0, 14);
	px_io_destroy(io);
	return 0;
}

struct cwaiter {
	px_future *f;
	_Atomic int waiting;
	int r;
};

static void *wait_forever(void *p)
{
	struct cwaiter *w = p;
	atomic_store(&w->waiting, 1);
	w->r = px_future_wait(w->f, PX_FOREVER);
	return NULL;
}

/* A recv cancelled by one thread while another waits on it (spinning in
 * wait_help, the reaper being busy): the waiter returns, once, and the
 * future is cancelled with its byte left in the socket. */
static int cancel_while_waiter_helps(void)
{
	px_io *io = io_new();
	struct chain ch;
	CHECK(chain_start(&ch, io) == 0, 20);
	long rounds = test_scaled(200);
	for (long r = 0; r < rounds; r++) {
		int sp[2];
		CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 1);
		char c = 0;
		struct cwaiter w = { .r = -1 };
		CHECK(px_io_recv(io, sp[0], &c, 1, 0, NULL, &w.f) == 0, 2);
		pthread_t tw;
		pthread_create(&tw, NULL, wait_forever, &w);
		while (!atomic_load(&w.waiting))
			;
		if (r & 1)
			usleep(100); /* sometimes well inside the wait */
		CHECK(px_future_cancel(w.f, PX_CANCEL_RUNNING) == 0, 3);
		pthread_join(tw, NULL);
		CHECK(w.r == 0, 4);
		CHECK(px_future_state_get(w.f) == PX_FUTURE_CANCELLED, 5);
		CHECK(px_future_cancel(w.f, PX_CANCEL_RUNNING) == 0, 6);
		px_future_release(w.f);
		close(sp[0]);
		close(sp[1]);
	}
	chain_join(&ch);
	px_io_destroy(io);
	return 0;
}

/*
 * The context destroyed while threads wait on its futures, with the reaper
 * kept busy so they are inside wait_help (pinning the context) when destroy
 * cancels everything: every waiter returns with its future cancelled, and
 * destroy frees nothing a helper still reads (the ASan and TSan runs check).
 */
static int destroy_while_waiters_help(void)
{
	long rounds = test_scaled(60);
	enum { W = 3 };
	for (long r = 0; r < rounds; r++) {
		px_io *io = io_new();
		struct chain ch;
		CHECK(chain_start(&ch, io) == 0, 1);
		struct cwaiter w[W];
		pthread_t tw[W];
		for (int i = 0; i < W; i++) {
			w[i] = (struct cwaiter){ .r = -1 };
			CHECK(px_io_sleep(io, 30 * PX_SEC, &w[i].f) == 0, 2);
			pthread_create(&tw[i], NULL, wait_forever, &w[i]);
		}
		for (int i = 0; i < W; i++)
			while (!atomic_load(&w[i].waiting))
				;
		if (r & 1)
			usleep(200);
		/* The chain's next start fails inside destroy: it ends. */
		px_io_destroy(io);
		CHECK(atomic_load(&ch.ended), 3);
		close(ch.fd);
		for (int i = 0; i < W; i++) {
			pthread_join(tw[i], NULL);
			CHECK(w[i].r == 0, 4);
			CHECK(px_future_state_get(w[i].f) == PX_FUTURE_CANCELLED,
			      5);
			px_future_release(w[i].f);
		}
	}
	return 0;
}

/*
 * A batch far bigger than the ring (entries 16) of sleeps, which do not
 * complete on submission: each time the ring fills, the submitter waits for
 * the reaper to submit. It must not also wait for that enter's completions
 * (the first 100 ms sleep, cut short only by the submitter's own 10 ms
 * timeout: seen as a few dozen such stalls in 250 ring-fulls). Every
 * operation completes exactly once.
 */
static int batch_bigger_than_ring(void)
{
	px_io *io = NULL;
	px_io_config cfg = { .entries = 16 };
	CHECK(px_io_create(&io, &cfg) == 0, 1);
	enum { N = 4000 };
	px_future **fs = calloc(N, sizeof(*fs));
	_Atomic int *ran = calloc(N, sizeof(*ran));
	/* Starts that waited about as long as the timeout: the stall. A
	 * start that waits for the reaper normally takes well under 1 ms. */
	int stalls = 0;
	CHECK(px_io_batch_begin(io) == 0, 3);
	for (long i = 0; i < N; i++) {
		int64_t t0 = test_now_ns();
		CHECK(px_io_sleep(io, 100 * PX_MSEC, &fs[i]) == 0, 4);
		if (test_now_ns() - t0 >= 9 * PX_MSEC)
			stalls++;
		CHECK(px_future_on_done(fs[i], count_done, &ran[i]) == 0, 5);
	}
	CHECK(px_io_batch_end(io) == 0, 6);
	if (stalls)
		fprintf(stderr, "%d starts of %d waited >= 9 ms\n", stalls, N);
	/* One or two may be preemption on a loaded machine. */
	CHECK(stalls <= 2, 7);
	CHECK(px_wait(fs, N, PX_ALL_COMPLETED, 20 * PX_SEC, NULL) == N, 8);
	for (long i = 0; i < N; i++) {
		for (int t = 0; t < 100000 && !atomic_load(&ran[i]); t++)
			sched_yield();
		CHECK(atomic_load(&ran[i]) == 1, 9);
		CHECK(px_future_error(fs[i]) == 0, 10);
		px_future_release(fs[i]);
	}
	px_io_stats st;
	CHECK(px_io_stats_get(io, &st) == 0 && st.completed == N &&
		      st.ops == N && st.inflight == 0,
	      11);
	px_io_destroy(io);
	free(fs);
	free(ran);
	return 0;
}

/* cmocka wrappers ---------------------------------------------------------------- */

#define CASE(name, secs)                          \
	static void t_##name(void **state)        \
	{                                         \
		(void)state;                      \
		test_run_in_child(#name, name, (secs)); \
	}
CASE(cancel_races_completion, 60)
CASE(deadline_races_completion, 60)
CASE(destroy_from_other_thread_with_chains, 60)
CASE(release_in_flight, 30)
CASE(cancel_while_destroying, 60)
CASE(cancel_in_forked_child, 30)
CASE(fd_reuse_while_waiting, 30)
CASE(msg_waitall, 30)
CASE(huge_send_len, 30)
CASE(request_reply_edges, 60)
CASE(submitters_wake_sleeping_reaper, 60)
CASE(batch_nesting, 30)
CASE(waiters_per_batch_exactly_once, 60)
CASE(waits_with_deadlines_while_reaper_busy, 60)
CASE(cancel_while_waiter_helps, 60)
CASE(destroy_while_waiters_help, 60)
CASE(batch_bigger_than_ring, 60)

int main(void)
{
	const char *env = getenv("PAREX_IO");
	if (env && !strcmp(env, "uring") && px_io_uring_probe()) {
		printf("io_uring unavailable here (%s): skipped\n",
		       px_strerror(px_io_uring_probe()));
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_cancel_races_completion),
		cmocka_unit_test(t_deadline_races_completion),
		cmocka_unit_test(t_destroy_from_other_thread_with_chains),
		cmocka_unit_test(t_release_in_flight),
		cmocka_unit_test(t_cancel_while_destroying),
		cmocka_unit_test(t_cancel_in_forked_child),
		cmocka_unit_test(t_fd_reuse_while_waiting),
		cmocka_unit_test(t_msg_waitall),
		cmocka_unit_test(t_huge_send_len),
		cmocka_unit_test(t_request_reply_edges),
		cmocka_unit_test(t_submitters_wake_sleeping_reaper),
		cmocka_unit_test(t_batch_nesting),
		cmocka_unit_test(t_waiters_per_batch_exactly_once),
		cmocka_unit_test(t_waits_with_deadlines_while_reaper_busy),
		cmocka_unit_test(t_cancel_while_waiter_helps),
		cmocka_unit_test(t_destroy_while_waiters_help),
		cmocka_unit_test(t_batch_bigger_than_ring),
	};
	if (getenv("PX_TEST_FILTER"))
		cmocka_set_test_filter(getenv("PX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
