/*
 * tests/test_io.c - the I/O layer: every operation on files, pipes and
 * loopback sockets, errors through futures, cancel, deadlines, 10,000
 * operations in flight, batching, waiting on I/O and task futures together,
 * use from several threads, the request client and the canned-reply server,
 * destroy with operations in flight, fork, and the fallback when io_uring is
 * blocked by seccomp.
 *
 * CTest runs this program twice, with PAREX_IO=uring and PAREX_IO=threads;
 * the uring run skips (77) where the kernel refuses io_uring.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <parex/executor.h>
#include <parex/io.h>

#include "netutil.h"
#include "test_util.h"

static px_io_backend expected_backend = PX_IO_AUTO;


/* The future's int64 result, asserting success. */
#define get_ok(f) get_ok_at((f), __LINE__)
static int64_t get_ok_at(px_future *f, int line)
{
	int64_t v = -1;
	int r = px_future_get_i64(f, 10 * PX_SEC, &v);
	if (r)
		fail_msg("line %d: operation failed: %d (%s)", line, r,
			 px_strerror(r));
	return v;
}

/* The future's error after it finished (waits). */
static int get_err(px_future *f)
{
	assert_int_equal(px_future_wait(f, 10 * PX_SEC), 0);
	return px_future_error(f);
}

static int tmpfile_fd(char *path)
{
	strcpy(path, "/tmp/px_test_io_XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	return fd;
}

/* A loopback port nobody listens on. */
static uint16_t dead_port(void)
{
	int ls;
	uint16_t port;
	assert_int_equal(px_io_tcp_listen(NULL, 0, 1, &ls, &port), 0);
	close(ls);
	return port;
}

/* Tests ---------------------------------------------------------------------- */

static void backend_matches_environment(void **state)
{
	(void)state;
	px_io *io = io_new();
	if (expected_backend != PX_IO_AUTO)
		assert_int_equal(px_io_backend_get(io), expected_backend);
	assert_string_equal(px_io_backend_name(io),
			    px_io_backend_get(io) == PX_IO_URING ? "uring"
								  : "threads");
	px_io_destroy(io);
	px_io_destroy(NULL);
}

static void bad_arguments(void **state)
{
	(void)state;
	px_io *io = io_new();
	px_future *f = (px_future *)1;
	assert_int_equal(px_io_create(NULL, NULL), -EINVAL);
	px_io_config bad = { .backend = 7 };
	px_io *x;
	assert_int_equal(px_io_create(&x, &bad), -EINVAL);
	assert_int_equal(px_io_read(io, 0, NULL, 4, 0, NULL, &f), -EINVAL);
	assert_int_equal(px_io_read(NULL, 0, &f, 4, 0, NULL, &f), -EINVAL);
	assert_int_equal(px_io_nop(io, NULL), -EINVAL);
	assert_int_equal(px_io_sleep(io, -1, &f), -EINVAL);
	assert_int_equal(px_io_poll(io, 0, 0, NULL, &f), -EINVAL);
	assert_int_equal(px_io_openat(io, AT_FDCWD, NULL, 0, 0, NULL, &f), -EINVAL);
	assert_int_equal(px_io_fsync(io, 0, 99, NULL, &f), -EINVAL);
	assert_int_equal(px_io_batch_end(io), -EINVAL);
	struct sockaddr_in sa = loopback(1);
	assert_int_equal(px_io_connect(io, 0, (struct sockaddr *)&sa, 0, NULL, &f),
			 -EINVAL);
	char buf[4];
	assert_int_equal(px_io_request(io, (struct sockaddr *)&sa, sizeof(sa),
				       "x", 1, buf, 0, NULL, &f),
			 -EINVAL);
	assert_int_equal(px_io_stats_get(NULL, NULL), -EINVAL);
	px_io_destroy(io);
}

static void file_operations(void **state)
{
	(void)state;
	px_io *io = io_new();
	char path[64];
	int fd = tmpfile_fd(path);
	px_future *f;

	assert_int_equal(px_io_write(io, fd, "hello world", 11, 0, NULL, &f), 0);
	assert_int_equal(get_ok(f), 11);
	px_future_release(f);

	char buf[32] = { 0 };
	assert_int_equal(px_io_read(io, fd, buf, 5, 6, NULL, &f), 0);
	assert_int_equal(get_ok(f), 5);
	assert_memory_equal(buf, "world", 5);
	px_future_release(f);

	/* Vectored, at an offset. */
	struct iovec wv[2] = { { "ABC", 3 }, { "defg", 4 } };
	assert_int_equal(px_io_writev(io, fd, wv, 2, 11, NULL, &f), 0);
	assert_int_equal(get_ok(f), 7);
	px_future_release(f);
	char a[4] = { 0 }, b[10] = { 0 };
	struct iovec rv[2] = { { a, 4 }, { b, 10 } };
	assert_int_equal(px_io_readv(io, fd, rv, 2, 9, NULL, &f), 0);
	assert_int_equal(get_ok(f), 9);
	assert_memory_equal(a, "ldAB", 4);
	assert_memory_equal(b, "Cdefg", 5);
	px_future_release(f);

	/* End of file reads 0. */
	assert_int_equal(px_io_read(io, fd, buf, sizeof(buf), 100, NULL, &f), 0);
	assert_int_equal(get_ok(f), 0);
	px_future_release(f);

	assert_int_equal(px_io_fsync(io, fd, 0, NULL, &f), 0);
	assert_int_equal(get_ok(f), 0);
	px_future_release(f);
	assert_int_equal(px_io_fsync(io, fd, PX_IO_DATASYNC, NULL, &f), 0);
	assert_int_equal(get_ok(f), 0);
	px_future_release(f);

	/* openat, read at the current position, close. */
	assert_int_equal(px_io_openat(io, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0,
				      NULL, &f), 0);
	int fd2 = (int)get_ok(f);
	assert_true(fd2 >= 0);
	px_future_release(f);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(px_io_read(io, fd2, buf, 5, PX_IO_CUR, NULL, &f), 0);
	assert_int_equal(get_ok(f), 5);
	assert_memory_equal(buf, "hello", 5);
	px_future_release(f);
	assert_int_equal(px_io_close(io, fd2, NULL, &f), 0);
	assert_int_equal(get_ok(f), 0);
	px_future_release(f);
	assert_int_equal(fcntl(fd2, F_GETFD), -1); /* really closed */

	/* A long path (copied into the operation, not kept by reference). */
	char longpath[200];
	int k = snprintf(longpath, sizeof(longpath), "/tmp");
	for (int i = 0; i < 40; i++)
		k += snprintf(longpath + k, sizeof(longpath) - (size_t)k, "/.");
	snprintf(longpath + k, sizeof(longpath) - (size_t)k, "/%s",
		 path + strlen("/tmp/"));
	assert_int_equal(px_io_openat(io, AT_FDCWD, longpath, O_RDONLY | O_CLOEXEC,
				      0, NULL, &f), 0);
	memset(longpath, 'x', sizeof(longpath) - 1);
	fd2 = (int)get_ok(f);
	px_future_release(f);
	close(fd2);

	close(fd);
	unlink(path);
	px_io_destroy(io);
}

static void errors_come_through_futures(void **state)
{
	(void)state;
	px_io *io = io_new();
	px_future *f;
	char buf[8];

	assert_int_equal(px_io_read(io, 999999, buf, 8, 0, NULL, &f), 0);
	assert_int_equal(get_err(f), -EBADF);
	px_future_release(f);
	assert_int_equal(px_io_write(io, -1, buf, 8, 0, NULL, &f), 0);
	assert_int_equal(get_err(f), -EBADF);
	px_future_release(f);
	assert_int_equal(px_io_close(io, 999999, NULL, &f), 0);
	assert_int_equal(get_err(f), -EBADF);
	px_future_release(f);
	assert_int_equal(px_io_openat(io, AT_FDCWD, "/nonexistent/parex", O_RDONLY,
				      0, NULL, &f), 0);
	assert_int_equal(get_err(f), -ENOENT);
	px_future_release(f);

	/* Refused connect. */
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = loopback(dead_port());
	assert_int_equal(px_io_connect(io, s, (struct sockaddr *)&sa, sizeof(sa),
				       NULL, &f), 0);
	assert_int_equal(get_err(f), -ECONNREFUSED);
	int64_t v;
	assert_int_equal(px_future_get_i64(f, 0, &v), -ECONNREFUSED);
	px_future_release(f);
	close(s);

	/* recv on something that is not a socket. */
	char path[64];
	int fd = tmpfile_fd(path);
	assert_int_equal(px_io_recv(io, fd, buf, 8, 0, NULL, &f), 0);
	assert_int_equal(get_err(f), -ENOTSOCK);
	px_future_release(f);
	close(fd);
	unlink(path);
	px_io_destroy(io);
}

static void pipe_operations(void **state)
{
	(void)state;
	px_io *io = io_new();
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	px_future *rd, *pl, *wr;
	char buf[16] = { 0 };

	/* Poll: waits until there is something to read. (Not together with a
	 * read of the same pipe: whichever takes the data first leaves the
	 * other waiting, on either backend.) */
	assert_int_equal(px_io_poll(io, p[0], POLLIN, NULL, &pl), 0);
	assert_int_equal(px_future_wait(pl, 20 * PX_MSEC), -ETIMEDOUT);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_true(get_ok(pl) & POLLIN);
	assert_int_equal(read(p[0], buf, 1), 1);
	px_future_release(pl);

	assert_int_equal(px_io_read(io, p[0], buf, sizeof(buf), PX_IO_CUR, NULL,
				    &rd), 0);
	/* Nothing written yet: the read waits (and blocks nobody else). */
	assert_int_equal(px_future_wait(rd, 20 * PX_MSEC), -ETIMEDOUT);
	assert_int_equal(px_io_write(io, p[1], "pipe!", 5, PX_IO_CUR, NULL, &wr), 0);
	assert_int_equal(get_ok(wr), 5);
	assert_int_equal(get_ok(rd), 5);
	assert_memory_equal(buf, "pipe!", 5);
	px_future_release(rd);
	px_future_release(wr);

	/* End of stream. */
	close(p[1]);
	assert_int_equal(px_io_read(io, p[0], buf, sizeof(buf), PX_IO_CUR, NULL,
				    &rd), 0);
	assert_int_equal(get_ok(rd), 0);
	px_future_release(rd);
	close(p[0]);
	px_io_destroy(io);
}

static void socket_operations(void **state)
{
	(void)state;
	px_io *io = io_new();
	int ls;
	uint16_t port;
	assert_int_equal(px_io_tcp_listen(NULL, 0, 16, &ls, &port), 0);
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	px_future *acc, *con, *f;
	assert_int_equal(px_io_accept(io, ls, (struct sockaddr *)&peer, &plen,
				      SOCK_CLOEXEC, NULL, &acc), 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = loopback(port);
	assert_int_equal(px_io_connect(io, c, (struct sockaddr *)&sa, sizeof(sa),
				       NULL, &con), 0);
	assert_int_equal(get_ok(con), 0);
	int s = (int)get_ok(acc);
	assert_true(s >= 0);
	assert_int_equal(peer.sin_family, AF_INET);
	px_future_release(acc);
	px_future_release(con);

	char buf[32] = { 0 };
	px_future *rv;
	assert_int_equal(px_io_recv(io, s, buf, sizeof(buf), 0, NULL, &rv), 0);
	assert_int_equal(px_io_send(io, c, "ping", 4, MSG_NOSIGNAL, NULL, &f), 0);
	assert_int_equal(get_ok(f), 4);
	assert_int_equal(get_ok(rv), 4);
	assert_memory_equal(buf, "ping", 4);
	px_future_release(f);
	px_future_release(rv);

	assert_int_equal(px_io_poll(io, c, POLLOUT, NULL, &f), 0);
	assert_true(get_ok(f) & POLLOUT);
	px_future_release(f);

	/* The peer closes: recv gives 0, a later send -EPIPE (no SIGPIPE). */
	assert_int_equal(px_io_recv(io, s, buf, sizeof(buf), 0, NULL, &rv), 0);
	close(c);
	assert_int_equal(get_ok(rv), 0);
	px_future_release(rv);
	int64_t sent = 0;
	for (int i = 0; i < 50 && sent >= 0; i++) {
		assert_int_equal(px_io_send(io, s, buf, sizeof(buf), MSG_NOSIGNAL,
					    NULL, &f), 0);
		assert_int_equal(px_future_wait(f, 10 * PX_SEC), 0);
		sent = px_future_error(f);
		px_future_release(f);
	}
	assert_true(sent == -EPIPE || sent == -ECONNRESET);
	close(s);
	close(ls);
	px_io_destroy(io);
}

static void sleep_and_nop(void **state)
{
	(void)state;
	px_io *io = io_new();
	px_future *f;
	int64_t t0 = test_now_ns();
	assert_int_equal(px_io_sleep(io, 20 * PX_MSEC, &f), 0);
	assert_int_equal(get_ok(f), 0);
	/* A lower bound is a correctness property, not a timing. */
	assert_true(test_now_ns() - t0 >= 20 * PX_MSEC);
	px_future_release(f);
	assert_int_equal(px_io_sleep(io, 0, &f), 0);
	assert_int_equal(get_ok(f), 0);
	px_future_release(f);
	assert_int_equal(px_io_nop(io, &f), 0);
	assert_int_equal(get_ok(f), 0);
	px_future_release(f);
	px_io_destroy(io);
}

static void cancel_running(void **state)
{
	(void)state;
	px_io *io = io_new();
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	char buf[8];
	px_future *f, *s;
	assert_int_equal(px_io_recv(io, sp[0], buf, sizeof(buf), 0, NULL, &f), 0);
	assert_int_equal(px_io_sleep(io, 60 * PX_SEC, &s), 0);
	/* Started operations cannot be cancelled plainly. */
	assert_int_equal(px_future_cancel(f, 0), -EBUSY);
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0);
	assert_int_equal(px_future_cancel(s, PX_CANCEL_RUNNING), 0);
	assert_int_equal(px_future_wait(f, 10 * PX_SEC), 0);
	assert_int_equal(px_future_wait(s, 10 * PX_SEC), 0);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_CANCELLED);
	assert_int_equal(px_future_error(f), -ECANCELED);
	assert_int_equal(px_future_state_get(s), PX_FUTURE_CANCELLED);
	/* Cancelling a finished one: -EBUSY, as for any future. */
	px_future *n;
	assert_int_equal(px_io_nop(io, &n), 0);
	assert_int_equal(get_ok(n), 0);
	assert_int_equal(px_future_cancel(n, PX_CANCEL_RUNNING), -EBUSY);
	px_future_release(n);
	/* The socket still works after the cancel. */
	px_future *r2;
	assert_int_equal(px_io_recv(io, sp[0], buf, sizeof(buf), 0, NULL, &r2), 0);
	assert_int_equal(write(sp[1], "x", 1), 1);
	assert_int_equal(get_ok(r2), 1);
	px_future_release(r2);
	px_future_release(f);
	px_future_release(s);
	close(sp[0]);
	close(sp[1]);
	px_io_destroy(io);
}

static void deadlines(void **state)
{
	(void)state;
	px_io *io = io_new();
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	char buf[8];
	px_io_opts o = { .timeout_ns = 30 * PX_MSEC };
	px_future *f, *p, *ok;
	int64_t t0 = test_now_ns();
	assert_int_equal(px_io_recv(io, sp[0], buf, sizeof(buf), 0, &o, &f), 0);
	assert_int_equal(px_io_poll(io, sp[0], POLLIN, &o, &p), 0);
	assert_int_equal(get_err(f), -ETIMEDOUT);
	assert_int_equal(get_err(p), -ETIMEDOUT);
	assert_true(test_now_ns() - t0 >= 30 * PX_MSEC);
	/* A deadline that is met changes nothing. */
	px_io_opts lo = { .timeout_ns = 10 * PX_SEC };
	assert_int_equal(write(sp[1], "abc", 3), 3);
	assert_int_equal(px_io_recv(io, sp[0], buf, sizeof(buf), 0, &lo, &ok), 0);
	assert_int_equal(get_ok(ok), 3);
	/* A deadline on a file read that finishes at once. */
	px_future *fr;
	char path[64];
	int fd = tmpfile_fd(path);
	assert_int_equal(write(fd, "data", 4), 4);
	assert_int_equal(px_io_read(io, fd, buf, 4, 0, &lo, &fr), 0);
	assert_int_equal(get_ok(fr), 4);
	px_future_release(fr);
	close(fd);
	unlink(path);
	px_future_release(f);
	px_future_release(p);
	px_future_release(ok);
	close(sp[0]);
	close(sp[1]);
	px_io_destroy(io);
}

/* 10,000 operations in flight: sleeps, then nops and file reads. */
static void ten_thousand_in_flight(void **state)
{
	(void)state;
	px_io *io = io_new();
	size_t n = (size_t)test_scaled(10000);
	px_future **fs = calloc(n, sizeof(*fs));
	assert_non_null(fs);
	assert_int_equal(px_io_batch_begin(io), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(px_io_sleep(io, 50 * PX_MSEC, &fs[i]), 0);
	assert_int_equal(px_io_batch_end(io), 0);
	px_io_stats st;
	assert_int_equal(px_io_stats_get(io, &st), 0);
	assert_true(st.ops >= n);
	assert_int_equal(px_wait(fs, n, PX_ALL_COMPLETED, 60 * PX_SEC, NULL),
			 (int)n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(get_ok(fs[i]), 0);
		px_future_release(fs[i]);
	}

	/* Reads of distinct offsets: each result lands in its own buffer. */
	char path[64];
	int fd = tmpfile_fd(path);
	uint32_t *data = malloc(n * sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		data[i] = (uint32_t)(i * 2654435761u);
	assert_int_equal(write(fd, data, n * 4), (ssize_t)(n * 4));
	uint32_t *got = calloc(n, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(px_io_read(io, fd, &got[i], 4, (int64_t)i * 4,
					    NULL, &fs[i]), 0);
	assert_int_equal(px_wait(fs, n, PX_ALL_COMPLETED, 60 * PX_SEC, NULL),
			 (int)n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(get_ok(fs[i]), 4);
		px_future_release(fs[i]);
	}
	assert_memory_equal(got, data, n * 4);
	assert_int_equal(px_io_stats_get(io, &st), 0);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.completed, st.ops);
	free(got);
	free(data);
	close(fd);
	unlink(path);
	free(fs);
	px_io_destroy(io);
}

/* Operations queued together go to the kernel together. */
static void batch_is_one_system_call(void **state)
{
	(void)state;
	px_io *io = io_new();
	if (px_io_backend_get(io) != PX_IO_URING) {
		px_io_destroy(io);
		skip();
	}
	enum { N = 256 };
	px_future *fs[N];
	px_io_stats before, after;
	/* Let the reaper reach its resting state (asleep in the kernel), so
	 * the counts below are the batch's alone. */
	assert_int_equal(px_io_nop(io, &fs[0]), 0);
	assert_int_equal(get_ok(fs[0]), 0);
	px_future_release(fs[0]);
	usleep(50000);
	assert_int_equal(px_io_stats_get(io, &before), 0);
	assert_int_equal(px_io_batch_begin(io), 0);
	assert_int_equal(px_io_batch_begin(io), 0); /* nests */
	for (int i = 0; i < N; i++)
		assert_int_equal(px_io_nop(io, &fs[i]), 0);
	assert_int_equal(px_io_batch_end(io), 0);
	px_io_stats mid;
	assert_int_equal(px_io_stats_get(io, &mid), 0);
	assert_int_equal(px_io_batch_end(io), 0);
	assert_int_equal(px_wait(fs, N, PX_ALL_COMPLETED, 10 * PX_SEC, NULL), N);
	assert_int_equal(px_io_stats_get(io, &after), 0);
	/* Nothing left the batch before its end; then one enter for 256
	 * (the reaper may add one of its own). */
	assert_true(mid.enters - before.enters <= 1);
	assert_true(after.enters - before.enters <= 3);
	for (int i = 0; i < N; i++)
		px_future_release(fs[i]);
	/* A batch on another context from the same thread is refused. */
	px_io *other = io_new();
	assert_int_equal(px_io_batch_begin(io), 0);
	assert_int_equal(px_io_batch_begin(other), -EBUSY);
	assert_int_equal(px_io_batch_end(io), 0);
	px_io_destroy(other);
	px_io_destroy(io);
}

/* Done callbacks start more operations: a chain of N reads. */
struct chain {
	px_io *io;
	int fd;
	char buf[4];
	_Atomic int left;
	_Atomic int errors;
	px_future *done;
};

static void chain_cb(px_future *f, void *arg)
{
	struct chain *c = arg;
	int64_t v = -1;
	if (px_future_get_i64(f, 0, &v) || v != 4)
		atomic_fetch_add(&c->errors, 1);
	px_future_release(f);
	if (atomic_fetch_sub(&c->left, 1) == 1) {
		px_promise_set_i64(c->done, 0);
		return;
	}
	px_future *nf;
	if (px_io_read(c->io, c->fd, c->buf, 4, 0, NULL, &nf) ||
	    px_future_on_done(nf, chain_cb, c))
		atomic_fetch_add(&c->errors, 1);
}

static void callbacks_start_operations(void **state)
{
	(void)state;
	struct chain c = { .io = io_new() };
	char path[64];
	c.fd = tmpfile_fd(path);
	assert_int_equal(write(c.fd, "abcd", 4), 4);
	int n = (int)test_scaled(5000);
	atomic_store(&c.left, n);
	assert_int_equal(px_promise_create(&c.done), 0);
	px_future *f;
	assert_int_equal(px_io_read(c.io, c.fd, c.buf, 4, 0, NULL, &f), 0);
	assert_int_equal(px_future_on_done(f, chain_cb, &c), 0);
	assert_int_equal(px_future_wait(c.done, 60 * PX_SEC), 0);
	assert_int_equal(atomic_load(&c.errors), 0);
	assert_int_equal(atomic_load(&c.left), 0);
	px_future_release(c.done);
	close(c.fd);
	unlink(path);
	px_io_destroy(c.io);
}

static int task_sleep_then_7(px_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	px_task_sleep(t, 30 * PX_MSEC);
	int64_t v = 7;
	return px_task_return(t, &v, sizeof(v));
}

static void wait_on_io_and_tasks(void **state)
{
	(void)state;
	px_io *io = io_new();
	px_executor *ex;
	char err[256];
	int r = px_executor_open(&ex, "thread:workers=2", err, sizeof(err));
	if (r)
		fail_msg("px_executor_open: %s", err);
	px_future *fs[4];
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	char buf[4];
	assert_int_equal(px_io_recv(io, sp[0], buf, 4, 0, NULL, &fs[0]), 0);
	assert_int_equal(px_executor_submit(ex, task_sleep_then_7, NULL, 0, NULL,
					    &fs[1]), 0);
	assert_int_equal(px_io_sleep(io, 10 * PX_MSEC, &fs[2]), 0);
	assert_int_equal(px_executor_submit(ex, task_sleep_then_7, NULL, 0, NULL,
					    &fs[3]), 0);
	/* The first to finish is the sleep or a task, never the recv. */
	bool done[4];
	assert_true(px_wait(fs, 4, PX_FIRST_COMPLETED, 10 * PX_SEC, done) >= 1);
	assert_false(done[0]);
	assert_int_equal(px_wait(fs + 1, 3, PX_ALL_COMPLETED, 10 * PX_SEC, NULL), 3);
	assert_int_equal(px_wait(fs, 4, PX_ALL_COMPLETED, 20 * PX_MSEC, done),
			 -ETIMEDOUT);
	assert_int_equal(write(sp[1], "four", 4), 4);
	assert_int_equal(px_wait(fs, 4, PX_ALL_COMPLETED, 10 * PX_SEC, done), 4);
	assert_int_equal(get_ok(fs[0]), 4);
	assert_int_equal(get_ok(fs[1]), 7);
	assert_int_equal(get_ok(fs[2]), 0);
	/* As-completed over the mix. */
	px_as_completed *it;
	assert_int_equal(px_as_completed_open(&it, fs, 4), 0);
	px_future *x;
	int seen = 0;
	while (px_as_completed_next(it, 10 * PX_SEC, &x) == 0)
		seen++;
	assert_int_equal(seen, 4);
	px_as_completed_close(it);
	for (int i = 0; i < 4; i++)
		px_future_release(fs[i]);
	close(sp[0]);
	close(sp[1]);
	px_executor_destroy(ex);
	px_io_destroy(io);
}

/* Several threads submit and wait at once (run under TSan too). */
struct mt_arg {
	px_io *io;
	int id;
	int ops;
	int bad;
};

static void *mt_thread(void *p)
{
	struct mt_arg *a = p;
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp)) {
		a->bad++;
		return NULL;
	}
	for (int i = 0; i < a->ops; i++) {
		px_future *rf, *wf, *nf;
		uint32_t out = (uint32_t)(a->id * 1000003 + i), in = 0;
		if (px_io_recv(a->io, sp[0], &in, 4, MSG_WAITALL, NULL, &rf) ||
		    px_io_send(a->io, sp[1], &out, 4, 0, NULL, &wf) ||
		    px_io_nop(a->io, &nf)) {
			a->bad++;
			break;
		}
		int64_t v1 = 0, v2 = 0, v3 = -1;
		int e1 = px_future_get_i64(wf, 10 * PX_SEC, &v1);
		int e2 = px_future_get_i64(rf, 10 * PX_SEC, &v2);
		int e3 = px_future_get_i64(nf, 10 * PX_SEC, &v3);
		if (e1 || e2 || e3 || v1 != 4 || v2 != 4 || v3 != 0 ||
		    in != out) {
			if (!a->bad)
				fprintf(stderr,
					"thread %d op %d: %d %d %d, %lld %lld "
					"%lld, %u %u\n",
					a->id, i, e1, e2, e3, (long long)v1,
					(long long)v2, (long long)v3, in, out);
			a->bad++;
		}
		px_future_release(rf);
		px_future_release(wf);
		px_future_release(nf);
		if (i % 64 == 0) {
			/* Now and then a cancel racing a completion. */
			px_future *s;
			if (px_io_sleep(a->io, 1000, &s) == 0) {
				px_future_cancel(s, PX_CANCEL_RUNNING);
				if (px_future_wait(s, 10 * PX_SEC))
					a->bad++;
				px_future_release(s);
			}
		}
	}
	close(sp[0]);
	close(sp[1]);
	return NULL;
}

static void many_threads(void **state)
{
	(void)state;
	px_io *io = io_new();
	enum { T = 4 };
	pthread_t th[T];
	struct mt_arg a[T];
	for (int i = 0; i < T; i++) {
		a[i] = (struct mt_arg){ io, i, (int)test_scaled(2000), 0 };
		assert_int_equal(pthread_create(&th[i], NULL, mt_thread, &a[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].bad, 0);
	}
	px_io_stats st;
	assert_int_equal(px_io_stats_get(io, &st), 0);
	assert_int_equal(st.inflight, 0);
	px_io_destroy(io);
}

static void destroy_with_operations_in_flight(void **state)
{
	(void)state;
	px_io *io = io_new();
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	char buf[8];
	px_future *r, *s, *a;
	int ls;
	assert_int_equal(px_io_tcp_listen(NULL, 0, 4, &ls, NULL), 0);
	assert_int_equal(px_io_recv(io, sp[0], buf, sizeof(buf), 0, NULL, &r), 0);
	assert_int_equal(px_io_sleep(io, 60 * PX_SEC, &s), 0);
	assert_int_equal(px_io_accept(io, ls, NULL, NULL, 0, NULL, &a), 0);
	px_io_destroy(io);
	/* Each is finished, cancelled, and still valid for its holder. */
	assert_int_equal(px_future_state_get(r), PX_FUTURE_CANCELLED);
	assert_int_equal(px_future_state_get(s), PX_FUTURE_CANCELLED);
	assert_int_equal(px_future_state_get(a), PX_FUTURE_CANCELLED);
	px_future_release(r);
	px_future_release(s);
	px_future_release(a);
	close(ls);
	close(sp[0]);
	close(sp[1]);
}

/* Request client and canned-reply server --------------------------------- */

static const char REPLY[] = "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello";

static void request_response(void **state)
{
	(void)state;
	px_io *srv_io = io_new(), *io = io_new();
	int ls;
	uint16_t port;
	assert_int_equal(px_io_tcp_listen(NULL, 0, 1024, &ls, &port), 0);
	px_io_responder_config cfg = { .reply = REPLY,
				       .reply_len = sizeof(REPLY) - 1,
				       .delay_ns = 5 * PX_MSEC,
				       .request_end = "\r\n\r\n" };
	px_io_responder *srv;
	assert_int_equal(px_io_responder_start(&srv, srv_io, ls, &cfg), 0);

	struct sockaddr_in sa = loopback(port);
	const char req[] = "GET / HTTP/1.0\r\n\r\n";
	enum { N = 100 };
	size_t n = (size_t)test_scaled(N);
	px_future *fs[N];
	char bufs[N][128];
	for (size_t i = 0; i < n; i++)
		assert_int_equal(px_io_request(io, (struct sockaddr *)&sa,
					       sizeof(sa), req, sizeof(req) - 1,
					       bufs[i], sizeof(bufs[i]), NULL,
					       &fs[i]), 0);
	assert_int_equal(px_wait(fs, n, PX_ALL_COMPLETED, 30 * PX_SEC, NULL),
			 (int)n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(get_ok(fs[i]), sizeof(REPLY) - 1);
		assert_memory_equal(bufs[i], REPLY, sizeof(REPLY) - 1);
		px_future_release(fs[i]);
	}

	/* Stop at a length, with a buffer that is exactly big enough. */
	px_io_request_opts ro = { .expect = 8, .timeout_ns = 10 * PX_SEC };
	px_future *f;
	assert_int_equal(px_io_request(io, (struct sockaddr *)&sa, sizeof(sa),
				       req, sizeof(req) - 1, bufs[0], 8, &ro, &f),
			 0);
	assert_int_equal(get_ok(f), 8);
	assert_memory_equal(bufs[0], "HTTP/1.0", 8);
	px_future_release(f);
	/* A reply bigger than the buffer. */
	assert_int_equal(px_io_request(io, (struct sockaddr *)&sa, sizeof(sa),
				       req, sizeof(req) - 1, bufs[0], 10, NULL, &f),
			 0);
	assert_int_equal(get_err(f), -EMSGSIZE);
	px_future_release(f);

	px_io_responder_stats st;
	assert_int_equal(px_io_responder_stats_get(srv, &st), 0);
	assert_true(st.replied >= n);
	assert_true(st.peak >= 1);
	px_io_responder_stop(srv);
	close(ls);
	px_io_destroy(io);
	px_io_destroy(srv_io);
}

static void request_errors_and_timeout(void **state)
{
	(void)state;
	px_io *io = io_new();
	char buf[64];
	px_future *f;
	struct sockaddr_in dead = loopback(dead_port());
	assert_int_equal(px_io_request(io, (struct sockaddr *)&dead, sizeof(dead),
				       "x", 1, buf, sizeof(buf), NULL, &f), 0);
	assert_int_equal(get_err(f), -ECONNREFUSED);
	px_future_release(f);

	/* A server that answers after 10 s: the 50 ms deadline wins; then
	 * stopping the server closes the connection it holds. */
	int ls;
	uint16_t port;
	assert_int_equal(px_io_tcp_listen(NULL, 0, 16, &ls, &port), 0);
	px_io_responder_config cfg = { .reply = "late", .reply_len = 4,
				       .delay_ns = 10 * PX_SEC };
	px_io_responder *srv;
	assert_int_equal(px_io_responder_start(&srv, io, ls, &cfg), 0);
	struct sockaddr_in sa = loopback(port);
	px_io_request_opts ro = { .timeout_ns = 50 * PX_MSEC };
	assert_int_equal(px_io_request(io, (struct sockaddr *)&sa, sizeof(sa),
				       "req", 3, buf, sizeof(buf), &ro, &f), 0);
	assert_int_equal(get_err(f), -ETIMEDOUT);
	px_future_release(f);

	/* Cancel an exchange in flight. */
	assert_int_equal(px_io_request(io, (struct sockaddr *)&sa, sizeof(sa),
				       "req", 3, buf, sizeof(buf), NULL, &f), 0);
	assert_int_equal(px_future_wait(f, 20 * PX_MSEC), -ETIMEDOUT);
	assert_int_equal(px_future_cancel(f, PX_CANCEL_RUNNING), 0);
	assert_int_equal(px_future_wait(f, 10 * PX_SEC), 0);
	assert_int_equal(px_future_state_get(f), PX_FUTURE_CANCELLED);
	px_future_release(f);
	px_io_responder_stop(srv);
	close(ls);
	px_io_destroy(io);
}

struct acc_count {
	_Atomic int n;
};

static void count_accept(px_io *io, int fd, void *arg)
{
	(void)io;
	struct acc_count *c = arg;
	if (fd >= 0) {
		close(fd);
		atomic_fetch_add(&c->n, 1);
	}
}

static void accept_loop(void **state)
{
	(void)state;
	px_io *io = io_new();
	int ls;
	uint16_t port;
	assert_int_equal(px_io_tcp_listen(NULL, 0, 256, &ls, &port), 0);
	struct acc_count c = { 0 };
	px_io_acceptor *a;
	assert_int_equal(px_io_acceptor_start(&a, io, ls, 2, count_accept, &c), 0);
	int n = (int)test_scaled(200);
	struct sockaddr_in sa = loopback(port);
	for (int i = 0; i < n; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(s);
	}
	for (int i = 0; i < 1000 && atomic_load(&c.n) < n; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&c.n), n);
	px_io_acceptor_stop(a);
	px_io_acceptor_stop(NULL);
	close(ls);
	px_io_destroy(io);
}

/* fork and the fallback --------------------------------------------------- */

static void child_after_fork(void **state)
{
	(void)state;
	px_io *io = io_new();
	px_future *f;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (px_io_nop(io, &f) != PX_EFORKED)
			_exit(1);
		px_io_destroy(io);
		/* A new context of its own works; made in a fresh image, since
		 * ThreadSanitizer cannot start threads after a multi-threaded
		 * fork. */
		execl("/proc/self/exe", "test_io", "--child", "new-context",
		      (char *)NULL);
		_exit(2);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* The parent's context is untouched. */
	assert_int_equal(px_io_nop(io, &f), 0);
	assert_int_equal(get_ok(f), 0);
	px_future_release(f);
	px_io_destroy(io);
}

/* Blocks io_uring_setup with EPERM, as container seccomp profiles do. */
static int block_io_uring(void)
{
	struct sock_filter filt[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(filt) / sizeof(filt[0]), filt };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static void fallback_when_seccomp_blocks(void **state)
{
	(void)state;
	/* The parent probes first, so the child must not trust the cache. */
	(void)px_io_uring_probe();
	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		dup2(pfd[1], 2);
		unsetenv("PAREX_IO");
		px_io *a = NULL;
		px_io_config forced = { .backend = PX_IO_URING };
		if (block_io_uring())
			_exit(10);
		/* The probe runs again after fork, and sees the filter. */
		if (px_io_uring_probe() != -EPERM)
			_exit(11);
		if (px_io_create(&a, &forced) != -EPERM)
			_exit(12);
		/* The seccomp filter survives exec (no_new_privs). */
		execl("/proc/self/exe", "test_io", "--child", "fallback",
		      (char *)NULL);
		_exit(13);
	}
	close(pfd[1]);
	char out[1024] = { 0 };
	size_t got = 0;
	ssize_t k;
	while ((k = read(pfd[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)k;
	close(pfd[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* One line, though two contexts fell back. */
	const char *line = "using the threads backend";
	char *first = strstr(out, line);
	assert_non_null(first);
	assert_null(strstr(first + 1, line));
}

/* The exec'd halves of the fork tests; the exit status is the verdict. */
static int child_main(const char *mode)
{
	px_io *a = NULL, *b = NULL;
	px_future *f;
	int64_t v = -1;
	int code = 0;
	if (!strcmp(mode, "new-context")) {
		if (px_io_create(&a, NULL))
			code = 3;
	} else if (!strcmp(mode, "fallback")) {
		/* Two contexts fall back, one line says so. */
		if (px_io_uring_probe() != -EPERM)
			code = 14;
		else if (px_io_create(&a, NULL) || px_io_create(&b, NULL))
			code = 15;
		else if (px_io_backend_get(a) != PX_IO_THREADS)
			code = 16;
	} else {
		code = 99;
	}
	if (!code && (px_io_nop(a, &f) || px_future_get_i64(f, 10 * PX_SEC, &v) ||
		      v != 0))
		code = 17;
	else if (!code)
		px_future_release(f);
	px_io_destroy(a);
	px_io_destroy(b);
	return code;
}

/* px_io_opts.done: registered before the operation starts, it runs once, in
 * the thread that completes the operation, and never for one that did not
 * start. */
struct done_rec {
	_Atomic int calls;
	pthread_t thread;
	int64_t result;
};

static void record_done(px_future *f, void *arg)
{
	struct done_rec *r = arg;
	r->thread = pthread_self();
	r->result = -1;
	px_future_get_i64(f, 0, &r->result);
	atomic_fetch_add(&r->calls, 1); /* publishes thread and result */
}

static void done_option(void **state)
{
	(void)state;
	px_io *io = io_new();
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct done_rec rec = { 0 };
	px_io_opts o = { .done = record_done, .done_arg = &rec };
	char c;
	px_future *f;
	assert_int_equal(px_io_read(io, p[0], &c, 1, PX_IO_CUR, &o, &f), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(get_ok(f), 1);
	/* The callback runs just after the outcome is published. */
	int64_t until = test_now_ns() + 10 * PX_SEC;
	while (atomic_load(&rec.calls) == 0 && test_now_ns() < until)
		usleep(1000);
	assert_int_equal(atomic_load(&rec.calls), 1);
	assert_int_equal(rec.result, 1);
	assert_false(pthread_equal(rec.thread, pthread_self()));
	px_future_release(f);

	/* Not started: no callback. */
	assert_int_equal(px_io_read(io, p[0], NULL, 1, PX_IO_CUR, &o, &f),
			 -EINVAL);
	/* Cancelled by destroy, which returns once callbacks have run. */
	assert_int_equal(px_io_read(io, p[0], &c, 1, PX_IO_CUR, &o, &f), 0);
	px_io_destroy(io);
	assert_int_equal(atomic_load(&rec.calls), 2);
	assert_int_equal(px_future_error(f), -ECANCELED);
	px_future_release(f);
	close(p[0]);
	close(p[1]);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--child"))
		return child_main(argv[2]);
	const char *env = getenv("PAREX_IO");
	if (env && !strcmp(env, "uring"))
		expected_backend = PX_IO_URING;
	else if (env && !strcmp(env, "threads"))
		expected_backend = PX_IO_THREADS;
	if (expected_backend == PX_IO_URING && px_io_uring_probe()) {
		printf("io_uring unavailable here (%s): skipped\n",
		       px_strerror(px_io_uring_probe()));
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(backend_matches_environment),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(file_operations),
		cmocka_unit_test(errors_come_through_futures),
		cmocka_unit_test(pipe_operations),
		cmocka_unit_test(socket_operations),
		cmocka_unit_test(sleep_and_nop),
		cmocka_unit_test(cancel_running),
		cmocka_unit_test(deadlines),
		cmocka_unit_test(ten_thousand_in_flight),
		cmocka_unit_test(batch_is_one_system_call),
		cmocka_unit_test(callbacks_start_operations),
		cmocka_unit_test(wait_on_io_and_tasks),
		cmocka_unit_test(many_threads),
		cmocka_unit_test(destroy_with_operations_in_flight),
		cmocka_unit_test(request_response),
		cmocka_unit_test(request_errors_and_timeout),
		cmocka_unit_test(accept_loop),
		cmocka_unit_test(child_after_fork),
		cmocka_unit_test(fallback_when_seccomp_blocks),
		cmocka_unit_test(done_option),
	};
	/* PX_TEST_FILTER=name runs one test (a glob), when chasing a bug. */
	if (getenv("PX_TEST_FILTER"))
		cmocka_set_test_filter(getenv("PX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
