/*
 * demos/demo_io.c - which backend suits I/O-bound work? Measured here.
 *
 * Run:   ./build/demos/demo_io                      (about 15 s)
 *        ./build/demos/demo_io --requests 500 --latency-ms 50 --csv io.csv --plot io.png
 *        ./build/demos/demo_io --url http://127.0.0.1:8080/ --requests 100
 *        PAREX_EXECUTOR=thread:workers=64 ./build/demos/demo_io   (pool by config)
 *        ./build/demos/demo_io --timeline io-timeline.png
 *
 * The seed's exercise 1 (the URL fetcher) and the I/O half of exercise 4.
 * The demo starts its own loopback HTTP server (a child process running a
 * parex io responder on io_uring: it answers every request after a fixed
 * latency, default 20 ms, and holds any number of connections at once), then
 * fetches N URLs (default 100), in --rounds interleaved rounds (default 3):
 *   - sequentially, one after the other, in this thread;
 *   - on the thread pool with K threads (default 16), each blocked in a
 *     plain socket exchange; also with CPython's GIL emulated (thread:gil=1),
 *     which the blocking calls release, as CPython's do;
 *   - on the process pool with K processes;
 *   - from one thread with parex io: every request in flight at once;
 *   - and, to show the server and the client holding thousands of
 *     connections, a burst of 2000 requests with parex io.
 * It reports median wall time, speedup over sequential with its spread over
 * the rounds, CPU time, peak RSS and the threads and processes used, then a
 * verdict computed from those numbers that states a conclusion only beyond
 * the spread. When python3 is present, cpython_io.py fetches from the same
 * server sequentially and on a ThreadPoolExecutor, beside thread:gil=1.
 * With --url it fetches from a plain-HTTP server of your choice instead.
 * With --timeline PNG it fetches once more on the thread pool and with
 * parex io, with parex's task tracing on (trace=FILE, $PAREX_TRACE), and
 * draws the requests in flight over time: at most K on a pool of K, all
 * of them at once with parex io.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <parex/executor.h>
#include <parex/io.h>

#include "common.h"
#include "timeline.h"
#include "netutil.h"

static const char about[] =
	"demo_io: fetch N URLs from a loopback HTTP server with a set latency\n"
	"(or from --url), sequentially, on the thread pool, on the process pool and\n"
	"from one thread with parex io; print a table and a verdict computed from\n"
	"the measurements.\n"
	"Usage: demo_io [options]   (--workers K: pool size, default 16)\n";

static const char env_extra[] =
	"  PAREX_DEMO_PYTHON  Python interpreter for the CPython comparison\n"
	"                     (default: python3 on PATH; empty: skip it)\n";

static int64_t opt_n = 100, opt_rounds = 3, opt_burst = -1, opt_body = 256, opt_timeout_ms = 5000,
	       opt_max_reply = 256 * 1024;
static double opt_latency_ms = 20, opt_burst_latency_ms = 1000;
static char burst_url[64];
static const char *opt_url;
static const char *opt_timeline;

/* ---- HTTP bits shared by every client ----------------------------------- */

typedef struct target {
	struct sockaddr_storage addr;
	socklen_t alen;
	char url[512];
	char req[768];
	uint32_t req_len;
	int64_t timeout_ns;
	uint32_t max_reply;
} target;

/* The task argument: the target, copied into each task. */
static target tgt;

/*
 * Length of the whole reply once its head has arrived: head + Content-Length,
 * 0 while unknown (or when the server sends none: read until it closes).
 */
static int64_t http_frame(const void *reply, size_t len, void *arg)
{
	(void)arg;
	const char *p = reply;
	const char *end = memmem(p, len, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t head = (size_t)(end - p) + 4;
	for (const char *l = p; l < end;) {
		const char *nl = memmem(l, (size_t)(end - l), "\r\n", 2);
		if (!nl)
			nl = end;
		if ((size_t)(nl - l) > 15 && !strncasecmp(l, "Content-Length:", 15)) {
			char num[24] = "";
			size_t k = (size_t)(nl - l) - 15;
			memcpy(num, l + 15, k < sizeof(num) - 1 ? k : sizeof(num) - 1);
			long long v = atoll(num);
			return v >= 0 && v <= INT64_MAX - (int64_t)head ? (int64_t)head + v : -EPROTO;
		}
		l = nl + 2;
	}
	return 0;
}

/* The status code of a reply, or -EPROTO when it is not HTTP. */
static int http_status(const char *reply, size_t len)
{
	if (len < 12 || strncmp(reply, "HTTP/1.", 7) || reply[8] != ' ' ||
	    !isdigit((unsigned char)reply[9]) || !isdigit((unsigned char)reply[10]) ||
	    !isdigit((unsigned char)reply[11]))
		return -EPROTO;
	return (reply[9] - '0') * 100 + (reply[10] - '0') * 10 + (reply[11] - '0');
}

/*
 * One exchange with plain blocking sockets (what a thread or a process
 * does): connect, send, read until the frame is complete or the peer
 * closes. Returns the reply length or a negative errno; *status gets the
 * HTTP status.
 */
static int64_t fetch_blocking(const target *t, char *buf, size_t cap, int *status)
{
	int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct timeval tv = { .tv_sec = t->timeout_ns / PX_SEC,
			      .tv_usec = (t->timeout_ns % PX_SEC) / 1000 };
	/* Also bounds connect(): Linux applies SO_SNDTIMEO to it. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int64_t r = 0;
	if (connect(fd, (const struct sockaddr *)&t->addr, t->alen)) {
		if (errno == EINTR) {
			/* A signal (a pool worker exiting) interrupted the
			 * wait; the connection goes on: wait for it. */
			struct pollfd pf = { .fd = fd, .events = POLLOUT };
			int pr, soerr = 0;
			socklen_t sl = sizeof(soerr);
			do
				pr = poll(&pf, 1, (int)(t->timeout_ns / PX_MSEC));
			while (pr < 0 && errno == EINTR);
			if (pr == 0)
				r = -ETIMEDOUT;
			else if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
				r = -errno;
			else
				r = -soerr;
			if (r)
				goto out;
		} else {
			r = errno == EINPROGRESS || errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
	}
	for (size_t off = 0; off < t->req_len;) {
		ssize_t n = send(fd, t->req + off, t->req_len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
		off += (size_t)n;
	}
	size_t got = 0;
	for (;;) {
		int64_t want = http_frame(buf, got, NULL);
		if (want < 0) {
			r = want;
			goto out;
		}
		if (want > 0 && got >= (size_t)want)
			break;
		if (got == cap) {
			r = -EMSGSIZE;
			goto out;
		}
		ssize_t n = recv(fd, buf + got, cap - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
		if (n == 0) {
			if (want > 0) {
				r = -ECONNRESET; /* closed before Content-Length */
				goto out;
			}
			break;
		}
		got += (size_t)n;
	}
	*status = http_status(buf, got);
	r = *status < 0 ? *status : (int64_t)got;
out:
	close(fd);
	return r;
}

/* The pool task: one blocking fetch, inside a blocking section so that a
 * GIL-emulating pool lets other tasks run meanwhile. */
static int fetch_task(px_task *t, const void *arg, size_t len)
{
	if (len != sizeof(target))
		return px_task_fail(t, -EINVAL, "bad argument");
	const target *tg = arg;
	char *buf = malloc(tg->max_reply);
	if (!buf)
		return -ENOMEM;
	int status = 0;
	px_task_blocking_begin(t);
	int64_t r = fetch_blocking(tg, buf, tg->max_reply, &status);
	px_task_blocking_end(t);
	free(buf);
	if (r < 0)
		return r;
	int64_t res[2] = { r, px_task_worker_id(t) }; /* bytes, worker */
	return px_task_return(t, res, sizeof(res));
}

/* Parses http://host[:port][/path] into tgt. Returns 0 or -1 (message). */
static int parse_url(const char *url, target *t)
{
	if (strncmp(url, "http://", 7)) {
		demo_err("bad URL '%s': only plain http://host[:port]/path is supported", url);
		return -1;
	}
	const char *h = url + 7, *hend, *p;
	char host[256], port[8] = "80";
	if (*h == '[') {
		hend = strchr(h, ']');
		if (!hend) {
			demo_err("bad URL '%s': unterminated [IPv6] host", url);
			return -1;
		}
		h++;
		p = hend + 1;
	} else {
		hend = h + strcspn(h, ":/");
		p = hend;
	}
	size_t hl = (size_t)(hend - h);
	if (!hl || hl >= sizeof(host)) {
		demo_err("bad URL '%s': no host", url);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	if (*p == ':') {
		p++;
		size_t pl = strspn(p, "0123456789");
		if (!pl || pl > 5 || (p[pl] && p[pl] != '/') || atoi(p) < 1 || atoi(p) > 65535) {
			demo_err("bad URL '%s': bad port", url);
			return -1;
		}
		memcpy(port, p, pl);
		port[pl] = 0;
		p += pl;
	}
	const char *path = *p ? p : "/";
	if (*path != '/' || strpbrk(path, " \r\n\"\\") || strlen(path) > 400) {
		demo_err("bad URL '%s': bad path", url);
		return -1;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	int g = getaddrinfo(host, port, &hints, &ai);
	if (g || !ai) {
		demo_err("bad URL '%s': cannot resolve '%s': %s", url, host, gai_strerror(g));
		return -1;
	}
	memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
	t->alen = ai->ai_addrlen;
	freeaddrinfo(ai);
	snprintf(t->url, sizeof(t->url), "%s", url);
	int n = snprintf(t->req, sizeof(t->req),
			 "GET %s HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: parex-demo_io\r\n"
			 "Connection: close\r\n\r\n",
			 path, host, strcmp(port, "80") ? ":" : "",
			 strcmp(port, "80") ? port : "");
	t->req_len = (uint32_t)n;
	return 0;
}

/* ---- the loopback server, in a child process ----------------------------- */

/* A server child: its pid and our end of its control socket. Two at most:
 * the main one and the burst's. */
typedef struct server {
	pid_t pid;
	int ctl;
} server;
static server servers[2] = { { 0, -1 }, { 0, -1 } };
static pid_t server_pids[2]; /* left out of the usage samples */

/*
 * Starts the server child: it listens on 127.0.0.1, answers after the
 * latency, and on each 's' on the control socket writes its responder
 * stats; it exits when the socket closes (or this process dies). Forked
 * while this process is still single-threaded. Returns the port, or -1.
 */
static int server_start(server *sv_out, double latency_ms,
			const char **backend_name)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		demo_err("socketpair: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid_t p = fork();
	if (p < 0) {
		demo_err("fork: %s", strerror(errno));
		return -1;
	}
	if (p == 0) {
		close(sv[0]);
		/* Hold no other server's control socket open, or that server
		 * would never see its EOF. */
		for (int i = 0; i < 2; i++)
			if (servers[i].ctl >= 0)
				close(servers[i].ctl);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int ctl = sv[1];
		struct {
			int32_t port; /* or a negative error */
			char backend[16];
		} hello = { 0, "" };
		px_io *io = NULL;
		px_io_responder *resp = NULL;
		int lfd = -1;
		uint16_t port = 0;
		int r = px_io_create(&io, NULL);
		if (!r)
			r = px_io_tcp_listen("127.0.0.1", 0, 65535, &lfd, &port);
		char reply[1 << 16];
		size_t rl = 0;
		if (!r) {
			int hl = snprintf(reply, sizeof(reply),
					  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
					  "Content-Length: %lld\r\nConnection: close\r\n\r\n",
					  (long long)opt_body);
			memset(reply + hl, 'x', (size_t)opt_body);
			if (opt_body)
				reply[hl + opt_body - 1] = '\n';
			rl = (size_t)hl + (size_t)opt_body;
			px_io_responder_config rc = {
				.reply = reply,
				.reply_len = rl,
				.delay_ns = (int64_t)(latency_ms * 1e6),
				.request_end = "\r\n\r\n",
			};
			r = px_io_responder_start(&resp, io, lfd, &rc);
		}
		hello.port = r ? r : port;
		if (io)
			snprintf(hello.backend, sizeof(hello.backend), "%s",
				 px_io_backend_name(io));
		if (write(ctl, &hello, sizeof(hello)) != sizeof(hello) || r)
			_exit(1);
		char c;
		while (read(ctl, &c, 1) == 1) {
			px_io_responder_stats st = { 0 };
			px_io_responder_stats_get(resp, &st);
			if (write(ctl, &st, sizeof(st)) != sizeof(st))
				break;
		}
		px_io_responder_stop(resp);
		close(lfd);
		px_io_destroy(io);
		_exit(0);
	}
	close(sv[1]);
	sv_out->pid = p;
	sv_out->ctl = sv[0];
	int server_ctl = sv[0];
	struct {
		int32_t port;
		char backend[16];
	} hello;
	static char name[16];
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(server_ctl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (read(server_ctl, &hello, sizeof(hello)) != sizeof(hello) || hello.port <= 0) {
		demo_err("the loopback server did not start: %s",
			 hello.port < 0 ? px_strerror(hello.port) : "no answer");
		return -1;
	}
	memcpy(name, hello.backend, sizeof(name));
	name[sizeof(name) - 1] = 0;
	*backend_name = name;
	return hello.port;
}

static int server_stats(const server *sv, px_io_responder_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (sv->ctl < 0)
		return -1;
	/* Retried on EINTR: with SO_RCVTIMEO set, Linux can fail a read so
	 * even when no signal handler runs (signal(7)). */
	ssize_t n;
	while ((n = write(sv->ctl, "s", 1)) < 0 && errno == EINTR)
		;
	if (n != 1)
		return -1;
	while ((n = read(sv->ctl, st, sizeof(*st))) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(*st))
		return -1;
	return 0;
}

/* Stops every server child (each exits when its control socket closes). */
static void server_stop(void)
{
	for (int i = 0; i < 2; i++) {
		server *sv = &servers[i];
		if (sv->ctl >= 0)
			close(sv->ctl);
		sv->ctl = -1;
		if (sv->pid <= 0)
			continue;
		int st;
		double deadline = demo_now() + 5;
		while (waitpid(sv->pid, &st, WNOHANG) == 0) {
			if (demo_now() > deadline) {
				kill(sv->pid, SIGKILL);
				waitpid(sv->pid, &st, 0);
				break;
			}
			usleep(2000);
		}
		sv->pid = 0;
	}
}

/* ---- the modes ------------------------------------------------------------- */

typedef struct mode_out {
	demo_usage u;
	int64_t ok, errors;
	int first_error;
	int skipped;
	double balance; /* pools: most tasks on one worker / fair share */
} mode_out;

static void note_error(mode_out *m, int err)
{
	m->errors++;
	if (!m->first_error)
		m->first_error = err;
}

static void run_sequential(int64_t n, mode_out *m)
{
	char *buf = malloc(tgt.max_reply);
	demo_usage_begin(&m->u);
	for (int64_t i = 0; i < n && buf; i++) {
		int status;
		int64_t r = fetch_blocking(&tgt, buf, tgt.max_reply, &status);
		if (r < 0)
			note_error(m, (int)r);
		else
			m->ok++;
		demo_progress("sequential", (size_t)i + 1, (size_t)n);
	}
	demo_usage_stop_wall(&m->u);
	demo_usage_sample(&m->u, server_pids, 2);
	demo_usage_end_cpu(&m->u);
	free(buf);
}

/* Returns 0, or PX_ENOBACKEND (rows skipped); exits on other errors. */
static int run_pool(const char *spec, const char *label, int64_t n, mode_out *m)
{
	px_future **fs = calloc((size_t)n, sizeof(*fs));
	if (!fs) {
		demo_err("out of memory");
		exit(1);
	}
	char err[512] = "";
	px_executor *ex;
	demo_usage_begin(&m->u);
	int r = px_executor_open(&ex, spec, err, sizeof(err));
	if (r == PX_ENOBACKEND) {
		free(fs);
		m->skipped = 1;
		return r;
	}
	if (r) {
		demo_progress_clear();
		demo_err("cannot open executor '%s': %s", spec ? spec : "(config)",
			 *err ? err : px_strerror(r));
		server_stop();
		exit(1);
	}
	for (int64_t i = 0; i < n; i++) {
		r = px_executor_submit(ex, fetch_task, &tgt, sizeof(tgt), NULL, &fs[i]);
		if (r) {
			demo_progress_clear();
			demo_err("submit on %s: %s", label, px_strerror(r));
			server_stop();
			exit(1);
		}
	}
	int nw = px_executor_workers(ex);
	int64_t *per = calloc((size_t)nw + 1, sizeof(*per));
	for (int64_t i = 0; i < n; i++) {
		const int64_t *res = NULL;
		size_t rl = 0;
		r = px_future_wait(fs[i], PX_FOREVER);
		if (!r)
			r = px_future_error(fs[i]);
		if (!r && (!(res = px_future_result(fs[i], &rl)) || rl != 2 * sizeof(int64_t)))
			r = -EMSGSIZE;
		if (r) {
			note_error(m, r);
		} else {
			m->ok++;
			if (per && res[1] >= 0 && res[1] < nw)
				per[res[1]]++;
		}
		px_future_release(fs[i]);
		demo_progress(label, (size_t)i + 1, (size_t)n);
	}
	int64_t most = 0;
	for (int w = 0; per && w < nw; w++)
		most = per[w] > most ? per[w] : most;
	m->balance = per && nw > 0 ? (double)most / (double)((n + nw - 1) / nw) : NAN;
	free(per);
	demo_usage_stop_wall(&m->u);
	demo_usage_sample(&m->u, server_pids, 2);
	px_executor_destroy(ex);
	demo_usage_end_cpu(&m->u);
	free(fs);
	return 0;
}

/* The backend parex io ran on ("io_uring" or "threads"), for the verdict. */
static const char *io_backend_ran = "io";

static void run_io(int64_t n, const char *label, mode_out *m, const char **io_backend)
{
	size_t cap = tgt.max_reply;
	char *bufs = malloc((size_t)n * cap);
	px_future **fs = calloc((size_t)n, sizeof(*fs));
	if (!bufs || !fs) {
		demo_err("out of memory for %lld replies of %zu bytes", (long long)n, cap);
		exit(1);
	}
	demo_usage_begin(&m->u);
	px_io *io;
	int r = px_io_create(&io, NULL);
	if (r) {
		demo_progress_clear();
		demo_err("cannot create an I/O context: %s", px_strerror(r));
		server_stop();
		exit(1);
	}
	*io_backend = px_io_backend_name(io);
	io_backend_ran = *io_backend;
	px_io_request_opts ro = { .timeout_ns = tgt.timeout_ns, .frame = http_frame };
	/* One system call for all the connects: a batch. */
	px_io_batch_begin(io);
	int64_t started = 0;
	for (; started < n; started++) {
		r = px_io_request(io, (const struct sockaddr *)&tgt.addr, tgt.alen,
				  tgt.req, tgt.req_len, bufs + (size_t)started * cap,
				  cap, &ro, &fs[started]);
		if (r) {
			note_error(m, r);
			break;
		}
	}
	px_io_batch_end(io);
	for (int64_t i = 0; i < started; i++) {
		int64_t v;
		r = px_future_get_i64(fs[i], PX_FOREVER, &v);
		if (!r && http_status(bufs + (size_t)i * cap, (size_t)v) < 0)
			r = -EPROTO;
		if (r)
			note_error(m, r);
		else
			m->ok++;
		if ((i & 31) == 0 || i + 1 == started)
			demo_progress(label, (size_t)i + 1, (size_t)n);
	}
	demo_usage_stop_wall(&m->u);
	demo_usage_sample(&m->u, server_pids, 2);
	for (int64_t i = 0; i < started; i++)
		px_future_release(fs[i]);
	px_io_destroy(io);
	demo_usage_end_cpu(&m->u);
	free(fs);
	free(bufs);
}

#define MAXR 32

/*
 * --timeline: n requests once more on the pool spec (traced with its trace
 * key) and once with parex io (traced through $PAREX_TRACE), drawn as the
 * requests in flight over time. Returns the JSON member timeline_png: the
 * picture's name, or null when it was not drawn.
 */
static json_t *io_timeline(const char *png, const char *pool_spec,
			   const char *pool_label, int64_t n)
{
	demo_tl tls[2];
	int k = 0;
	char tmp[256], spec[600];
	if (pool_label && !demo_tl_tmpname(tmp, sizeof(tmp))) {
		snprintf(spec, sizeof(spec), "%s%strace=%s", pool_spec ? pool_spec : "",
			 pool_spec ? "," : ":", tmp);
		mode_out m = { .balance = NAN };
		if (run_pool(spec, "timeline: pool", n, &m) == 0 &&
		    demo_tl_read(tmp, pool_label, &tls[k]) == 0)
			k++;
		else
			unlink(tmp);
	}
	if (!demo_tl_tmpname(tmp, sizeof(tmp))) {
		const char *saved = getenv("PAREX_TRACE");
		char *keep = saved ? strdup(saved) : NULL;
		const char *be = "?";
		mode_out m = { .balance = NAN };
		setenv("PAREX_TRACE", tmp, 1);
		run_io(n, "timeline: parex io", &m, &be);
		if (keep)
			setenv("PAREX_TRACE", keep, 1);
		else
			unsetenv("PAREX_TRACE");
		free(keep);
		char label[64];
		snprintf(label, sizeof(label), "parex io (%s)", be);
		if (demo_tl_read(tmp, label, &tls[k]) == 0)
			k++;
		else
			unlink(tmp);
	}
	demo_progress_clear();
	char title[160];
	snprintf(title, sizeof(title), "demo_io: requests in flight, %lld requests per run",
		 (long long)n);
	int rc = k ? demo_tl_plot_inflight(png, title, tls, k) : -1;
	for (int i = 0; i < k; i++)
		demo_tl_free(&tls[i]);
	if (rc)
		return json_null();
	printf("\ntimeline: %s\n", png);
	const char *slash = strrchr(png, '/');
	return demo_json_str(slash ? slash + 1 : png);
}

static const demo_col cols[] = {
	{ "mode", 's', 0 },        { "requests", 'i', 0 },  { "concurrency", 'i', 0 },
	{ "runs", 'i', 0 },        { "wall_s", 'f', 3 },    { "speedup", 'f', 2 },
	{ "speedup_lo", 'f', 2 },  { "speedup_hi", 'f', 2 }, { "req_per_s", 'f', 0 },
	{ "cpu_s", 'f', 3 },       { "cpu_us_per_req", 'f', 1 },
	{ "peak_rss_mb", 'f', 1 }, { "threads", 'i', 0 },   { "procs", 'i', 0 },
	{ "errors", 'i', 0 },      { "server_peak_conns", 'f', 0 },
	{ "balance", 'f', 2 },
};

static int find(const demo_table *t, const char *prefix)
{
	for (int r = 0; r < demo_table_rows(t); r++)
		if (!strncmp(demo_table_str(t, r, "mode"), prefix, strlen(prefix)))
			return r;
	return -1;
}

static double num(const demo_table *t, int row, const char *col)
{
	return row < 0 ? NAN : demo_table_num(t, row, col);
}

/* ---- repeated measurements ------------------------------------------------ */

/* A mode and its rounds: the wall time per request of each. */
typedef struct iomode {
	char label[128];
	int kind; /* 0 sequential, 1 pool, 2 parex io */
	const char *spec;
	char specbuf[256];
	int64_t reqs, conc;
	int n;
	double per[MAXR];
	mode_out last; /* the last round's usage; errors over all rounds */
	bool skipped;
} iomode;

static void mode_record(iomode *md, const mode_out *m)
{
	int64_t errors = md->last.errors + m->errors;
	int first = md->last.first_error ? md->last.first_error : m->first_error;
	md->last = *m;
	md->last.errors = errors;
	md->last.first_error = first;
	if (md->n < MAXR)
		md->per[md->n++] = m->u.wall / (double)md->reqs;
}

/* Median speedup of md over base, per request, and the middle half of the
 * per-round ratios (rounds pair up: they ran in the same load episode). */
static void mode_speedup(const iomode *md, const iomode *base, double *sp,
			 double *lo, double *hi)
{
	*sp = *lo = *hi = NAN;
	if (!base || !base->n || !md->n)
		return;
	int n = md->n < base->n ? md->n : base->n;
	double ratio[MAXR];
	for (int i = 0; i < n; i++)
		ratio[i] = base->per[i] / md->per[i];
	*sp = demo_median(base->per, base->n) / demo_median(md->per, md->n);
	*lo = demo_quantile(ratio, n, 0.25);
	*hi = demo_quantile(ratio, n, 0.75);
	if (*sp < *lo)
		*lo = *sp;
	if (*sp > *hi)
		*hi = *sp;
}

static void add_mode_row(demo_table *t, const iomode *md, const iomode *base,
			 double peak)
{
	double sp, lo, hi;
	mode_speedup(md, base, &sp, &lo, &hi);
	double wall = demo_median(md->per, md->n) * (double)md->reqs;
	const mode_out *m = &md->last;
	demo_table_add(t, md->label, (int64_t)md->reqs, (int64_t)md->conc,
		       (int64_t)md->n, wall, sp, lo, hi, (double)md->reqs / wall,
		       m->u.cpu, m->u.cpu / (double)md->reqs * 1e6, m->u.peak_rss_mb,
		       (int64_t)m->u.threads, (int64_t)m->u.procs, m->errors, peak,
		       m->balance);
	if (m->errors)
		demo_note("%s: %lld of %lld requests failed, first: %s", md->label,
			  (long long)m->errors, (long long)md->reqs * md->n,
			  px_strerror(m->first_error));
}

/*
 * Do more workers help this I/O? "yes" when the whole middle half of the
 * rounds is at least 2x sequential, "no" when it stays under 1.2x with at
 * least 4 waits to overlap, else inconclusive (why in reason).
 */
static const char *io_classify(const demo_table *t, int row, double ideal,
			       char *reason, size_t len)
{
	double lo = demo_table_num(t, row, "speedup_lo"),
	       hi = demo_table_num(t, row, "speedup_hi");
	double runs = demo_table_num(t, row, "runs");
	*reason = 0;
	if (runs < 3) {
		snprintf(reason, len, "only %.0f round(s) (use --rounds 3 or more)", runs);
		return "inconclusive";
	}
	if (lo >= 2)
		return "yes";
	if (hi < 1.2 && ideal >= 4)
		return "no";
	snprintf(reason, len, "the middle half of the rounds spans %.2fx..%.2fx (more --rounds, or a quieter machine, may settle it)",
		 lo, hi);
	return "inconclusive";
}

int main(int argc, char **argv)
{
	bool no_burst = false;
	const demo_option extra[] = {
		{ "requests", "N", "URLs to fetch per mode (default 100)",
		  DEMO_OPT_INT, &opt_n, 1, 1000000 },
		{ "rounds", "R", "interleaved rounds over every mode (default 3)",
		  DEMO_OPT_INT, &opt_rounds, 1, MAXR },
		{ "latency-ms", "MS", "the loopback server's answer delay (default 20)",
		  DEMO_OPT_DOUBLE, &opt_latency_ms, 0, 60000 },
		{ "url", "URL", "fetch http://host[:port]/path instead of the own server",
		  DEMO_OPT_STR, &opt_url, 0, 0 },
		{ "burst", "N", "concurrent requests of the parex io burst (default 2000 with the own server, 0 with --url)",
		  DEMO_OPT_INT, &opt_burst, 0, 100000 },
		{ "no-burst", "", "skip the burst", DEMO_OPT_FLAG, &no_burst, 0, 0 },
		{ "burst-latency-ms", "MS", "answer delay of the burst's server (default 1000)",
		  DEMO_OPT_DOUBLE, &opt_burst_latency_ms, 0, 60000 },
		{ "body", "BYTES", "reply body size of the own server (default 256)",
		  DEMO_OPT_INT, &opt_body, 0, 60000 },
		{ "timeout-ms", "MS", "per-request timeout (default 5000)",
		  DEMO_OPT_INT, &opt_timeout_ms, 1, 600000 },
		{ "max-reply", "BYTES", "largest reply accepted (default 262144)",
		  DEMO_OPT_INT, &opt_max_reply, 1024, 64 << 20 },
		{ "timeline", "PNG", "also draw the requests in flight over time on the "
		  "thread pool and with parex io (traced runs; gnuplot)",
		  DEMO_OPT_STR, &opt_timeline, 0, 0 },
	};
	demo_env_extra = env_extra;
	demo_opts o;
	int pr = demo_parse(argc, argv, about, extra, 11, &o);
	if (pr)
		return pr > 0 ? 0 : 2;
	demo_envcfg env;
	if (demo_envcfg_get(&env))
		return 2;
	if (no_burst)
		opt_burst = 0;
	if (opt_burst < 0) /* no burst against someone else's server */
		opt_burst = opt_url ? 0 : 2000;
	signal(SIGPIPE, SIG_IGN);

	/* Thousands of connections need as many descriptors (client + server). */
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	int64_t fd_room = (int64_t)rl.rlim_cur - 64;
	int64_t io_n = opt_n;
	if (io_n > fd_room || opt_burst > fd_room) {
		demo_note("descriptor limit %llu: parex io requests capped at %lld at once",
			  (unsigned long long)rl.rlim_cur, (long long)fd_room);
		if (io_n > fd_room)
			io_n = fd_room;
		if (opt_burst > fd_room)
			opt_burst = fd_room;
	}

	const char *server_backend = NULL;
	tgt.timeout_ns = opt_timeout_ms * PX_MSEC;
	if (opt_url) {
		if (parse_url(opt_url, &tgt))
			return 2;
		tgt.max_reply = (uint32_t)opt_max_reply;
	} else {
		int port = server_start(&servers[0], opt_latency_ms, &server_backend);
		server_pids[0] = servers[0].pid;
		if (opt_burst > 0) {
			/* The burst's server answers after a longer delay, so
			 * that every connection of the burst is open at once. */
			int bport = server_start(&servers[1], opt_burst_latency_ms,
						 &server_backend);
			server_pids[1] = servers[1].pid;
			if (bport < 0) {
				server_stop();
				return 1;
			}
			snprintf(burst_url, sizeof(burst_url),
				 "http://127.0.0.1:%d/burst", bport);
		}
		if (port < 0) {
			server_stop();
			return 1;
		}
		char url[64];
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/item", port);
		parse_url(url, &tgt);
		tgt.max_reply = (uint32_t)(opt_body + 4096);
	}
	/* Does the URL answer? One try, bounded, before any timing. */
	{
		target pre = tgt;
		pre.timeout_ns = tgt.timeout_ns < 3 * PX_SEC ? tgt.timeout_ns : 3 * PX_SEC;
		char *buf = malloc(pre.max_reply);
		int status = 0;
		int64_t r = buf ? fetch_blocking(&pre, buf, pre.max_reply, &status) : -ENOMEM;
		free(buf);
		if (r < 0) {
			demo_err("cannot fetch %s: %s", tgt.url, px_strerror((int)r));
			server_stop();
			return 1;
		}
		if (status < 200 || status > 399)
			demo_note("%s answers with HTTP status %d; replies count as fetched all the same",
				  tgt.url, status);
	}

	int K = o.workers ? o.workers : 16;
	const char *defaults[] = { "thread", "thread:gil=1", "process" };
	const char *entries[8];
	int nent = demo_backend_list(&o, &env, defaults, 3, entries);
	if (!o.workers && nent == 1 && !entries[0] && env.workers)
		K = env.workers;

	printf("demo_io: %lld requests to %s (%s), pools of %d workers, %d CPUs\n",
	       (long long)opt_n, tgt.url,
	       opt_url ? "your server" : "loopback server, answers after the latency",
	       K, demo_cpus());
	if (!opt_url)
		printf("server: a child process with parex io (%s), reply %lld bytes after %.1f ms\n",
		       server_backend, (long long)opt_body, opt_latency_ms);
	if (nent == 1 && !entries[0])
		printf("executor from %s: %s%s (--backend all compares every backend)\n",
		       env.source, env.backend, env.gil ? ":gil=1" : "");
	printf("\n");
	fflush(stdout);

	demo_machine mach;
	demo_machine_begin(&mach);
	demo_table *t = demo_table_new(cols, (int)(sizeof(cols) / sizeof(cols[0])));
	int fail = 0;
	const char *io_backend = "?";

	/* The modes, measured in rounds that visit each once, starting one
	 * further along each time: a burst of other load hits them alike. */
	iomode modes[10];
	int nm = 0;
	modes[nm++] = (iomode){ .kind = 0, .reqs = opt_n, .conc = 1 };
	snprintf(modes[0].label, sizeof(modes[0].label), "sequential");
	for (int b = 0; b < nent; b++) {
		char lb[96];
		iomode *md = &modes[nm++];
		*md = (iomode){ .kind = 1, .reqs = opt_n, .conc = K };
		demo_label(lb, sizeof(lb), entries[b], &env);
		snprintf(md->label, sizeof(md->label), "%s pool", lb);
		md->spec = demo_spec(md->specbuf, sizeof(md->specbuf), entries[b],
				     entries[b] || o.workers || !env.workers ? K : 0);
	}
	modes[nm++] = (iomode){ .kind = 2, .reqs = io_n, .conc = io_n };
	snprintf(modes[nm - 1].label, sizeof(modes[nm - 1].label), "parex io");
	for (int r = 0; r < opt_rounds; r++)
		for (int k = 0; k < nm; k++) {
			iomode *md = &modes[(k + r) % nm];
			if (md->skipped)
				continue;
			mode_out m = { .balance = NAN };
			if (md->kind == 0) {
				run_sequential(md->reqs, &m);
			} else if (md->kind == 1) {
				if (run_pool(md->spec, md->label, md->reqs, &m) == PX_ENOBACKEND) {
					md->skipped = true;
					demo_note("%s: the process backend is not built into this parex (PX_ENOBACKEND); its row is skipped",
						  md->label);
					continue;
				}
			} else {
				run_io(md->reqs, "parex io, 1 thread", &m, &io_backend);
			}
			mode_record(md, &m);
		}
	snprintf(modes[nm - 1].label, sizeof(modes[nm - 1].label), "parex io (%s)",
		 io_backend);
	json_t *tl_png = json_null();
	if (opt_timeline) {
		/* The first pool measured (the thread pool by default). */
		const iomode *pm = NULL;
		for (int k = 0; k < nm && !pm; k++)
			if (modes[k].kind == 1 && !modes[k].skipped)
				pm = &modes[k];
		json_decref(tl_png);
		tl_png = io_timeline(opt_timeline, pm ? pm->spec : NULL,
				     pm ? pm->label : NULL, io_n);
	}
	px_io_responder_stats st1;
	for (int k = 0; k < nm; k++) {
		if (modes[k].skipped)
			continue;
		double peak = NAN;
		if (modes[k].kind == 2 && !opt_url && !server_stats(&servers[0], &st1))
			peak = (double)st1.peak;
		add_mode_row(t, &modes[k], &modes[0], peak);
		fail |= modes[k].last.errors != 0;
	}

	/* CPython's ThreadPoolExecutor against the same server. */
	char pywhy[512] = "";
	json_t *pydoc = NULL;
	iomode pyseq = { .kind = 0, .conc = 1 }, pythr = { .kind = 1, .conc = K };
	{
		char a_u[600], a_n[32], a_s[32], a_w[16], a_r[16], a_t[32];
		snprintf(a_u, sizeof(a_u), "%s", tgt.url);
		snprintf(a_n, sizeof(a_n), "%lld", (long long)opt_n);
		snprintf(a_s, sizeof(a_s), "%lld", (long long)(opt_n < 50 ? opt_n : 50));
		snprintf(a_w, sizeof(a_w), "%d", K);
		snprintf(a_r, sizeof(a_r), "%lld", (long long)opt_rounds);
		snprintf(a_t, sizeof(a_t), "%g", (double)opt_timeout_ms / 1000);
		const char *args[] = { "--url", a_u, "--requests", a_n,
				       "--seq-requests", a_s, "--workers", a_w,
				       "--rounds", a_r, "--timeout", a_t, NULL };
		pydoc = demo_python_run("cpython_io.py", args, pywhy, sizeof(pywhy));
	}
	if (pydoc) {
		json_t *a = json_object_get(json_object_get(pydoc, "sequential"), "per_request");
		json_t *b = json_object_get(json_object_get(pydoc, "thread"), "per_request");
		pyseq.reqs = json_integer_value(json_object_get(pydoc, "seq_requests"));
		pythr.reqs = json_integer_value(json_object_get(pydoc, "requests"));
		for (size_t i = 0; i < json_array_size(a) && pyseq.n < MAXR; i++)
			pyseq.per[pyseq.n++] = json_number_value(json_array_get(a, i));
		for (size_t i = 0; i < json_array_size(b) && pythr.n < MAXR; i++)
			pythr.per[pythr.n++] = json_number_value(json_array_get(b, i));
		snprintf(pyseq.label, sizeof(pyseq.label), "cpython sequential");
		snprintf(pythr.label, sizeof(pythr.label), "cpython ThreadPoolExecutor");
		pyseq.last.u.cpu = pythr.last.u.cpu = NAN;
		pyseq.last.u.peak_rss_mb = pythr.last.u.peak_rss_mb = NAN;
		pyseq.last.balance = pythr.last.balance = NAN;
		if (pyseq.n && pythr.n) {
			add_mode_row(t, &pyseq, &pyseq, NAN);
			add_mode_row(t, &pythr, &pyseq, NAN);
		} else {
			snprintf(pywhy, sizeof(pywhy), "cpython_io.py gave no samples");
		}
		demo_json_set("cpython", json_pack("{s:s}", "version",
						   json_string_value(json_object_get(pydoc, "python")) ?: "?"));
		json_decref(pydoc);
	}
	if (!pyseq.n || !pythr.n)
		demo_note("CPython comparison skipped: %s", pywhy);

	if (opt_burst > 0) {
		/* Against the burst's server when the demo runs its own; its
		 * latency differs, so no speedup over sequential is shown. */
		target saved = tgt;
		if (burst_url[0]) {
			parse_url(burst_url, &tgt);
			tgt.max_reply = saved.max_reply;
		}
		tgt.timeout_ns = saved.timeout_ns + (int64_t)(opt_burst_latency_ms * 1e6);
		mode_out mb = { .balance = NAN };
		run_io(opt_burst, "parex io burst", &mb, &io_backend);
		iomode bm = { .kind = 2, .reqs = opt_burst, .conc = opt_burst };
		snprintf(bm.label, sizeof(bm.label), "parex io burst (%s)", io_backend);
		mode_record(&bm, &mb);
		double peak = NAN;
		if (!opt_url && !server_stats(burst_url[0] ? &servers[1] : &servers[0], &st1))
			peak = (double)st1.peak;
		add_mode_row(t, &bm, NULL, peak);
		fail |= mb.errors != 0;
		tgt = saved;
	}
	demo_progress_clear();
	server_stop();

	demo_table_print(t);
	printf("\nspeedup: sequential time per request / this mode's time per request;\n"
	       "concurrency: requests that can be in flight at once; cpu_s: user+system CPU\n"
	       "of this process and its children (the server child excluded); peak_rss_mb:\n"
	       "sum over the process tree; threads/procs: counted while the mode ran;\n"
	       "server_peak_conns: most connections the server held at once so far (the\n"
	       "burst has its own server, answering after %.0f ms); balance: most requests\n"
	       "run by one pool worker / ceil(requests / workers) (1.00: even).\n",
	       opt_burst_latency_ms);

	/* ---- verdict: computed from the table ---- */
	demo_machine_end(&mach);
	if (!isnan(mach.others_cpus) && mach.others_cpus >= 0.25)
		demo_note("other programs used %.2f of the %d CPUs on average while this demo ran (from /proc/stat): waits still overlap, but CPU-heavy modes and the server may have been slowed",
			  mach.others_cpus, demo_cpus());
	int rs = 0;
	double sw = num(t, rs, "wall_s"), scpu = num(t, rs, "cpu_s");
	double cshare = scpu / sw;
	demo_verdict("sequential: %lld requests took %.2f s (median of %.0f rounds), %.2f ms each, of which %.1f%% was CPU time%s",
		     (long long)opt_n, sw, num(t, rs, "runs"), sw / (double)opt_n * 1e3,
		     100 * cshare,
		     cshare < 0.2 ? ": I/O-bound work is mostly waiting, and waiting needs no CPU"
				  : ": this server answers so fast that the client's own CPU work is a large part of each request");
	int rt = find(t, "thread pool"), rg = find(t, "thread:gil=1 pool"),
	    rp = find(t, "process pool"), ri = find(t, "parex io ("),
	    rb = find(t, "parex io burst"), rcp = find(t, "cpython ThreadPool");
	double ideal = (double)(K < opt_n ? K : opt_n);
	char why[256];
#define SPREAD(r) num(t, r, "speedup"), num(t, r, "speedup_lo"), num(t, r, "speedup_hi")
	const char *vt = NULL, *vg = NULL, *vc = NULL;
	if (rt >= 0) {
		vt = io_classify(t, rt, ideal, why, sizeof(why));
		demo_verdict_field("threads_help_io", vt);
		demo_verdict("thread pool, %d threads: %.2fx the sequential speed (middle half of the rounds %.2f..%.2fx; a pool of %d overlaps at most %.0f waits, so %.0fx is its ceiling)%s%s",
			     K, SPREAD(rt), K, ideal, ideal,
			     !strcmp(vt, "yes") ? ": threads help I/O-bound work"
			     : !strcmp(vt, "no") ? ": threads did not help here" : ": inconclusive on this run: ",
			     why);
	}
	if (rg >= 0) {
		vg = io_classify(t, rg, ideal, why, sizeof(why));
		demo_verdict_field("gil_threads_help_io", vg);
		if (!strcmp(vg, "yes"))
			demo_verdict("with the GIL emulated, threads still reached %.2fx (%.2f..%.2fx): blocking calls release the GIL, which is why Python threads do help I/O-bound work",
				     SPREAD(rg));
		else if (!strcmp(vg, "no"))
			demo_verdict("with the GIL emulated, threads reached only %.2fx (%.2f..%.2fx): here the GIL was not released while waiting",
				     SPREAD(rg));
		else
			demo_verdict("with the GIL emulated, threads reached %.2fx (%.2f..%.2fx): inconclusive on this run: %s",
				     SPREAD(rg), why);
	}
	if (rcp >= 0) {
		vc = io_classify(t, rcp, ideal, why, sizeof(why));
		demo_verdict_field("cpython_threads_help_io", vc);
		demo_verdict("CPython's ThreadPoolExecutor (%d threads, urllib) reached %.2fx its own sequential speed (%.2f..%.2fx)%s%s",
			     K, SPREAD(rcp),
			     !strcmp(vc, "inconclusive") ? ": inconclusive on this run: " : "",
			     why);
		const char *match = "inconclusive";
		if (vg && strcmp(vg, "inconclusive") && strcmp(vc, "inconclusive"))
			match = strcmp(vg, vc) ? "no" : "yes";
		demo_verdict_field("emulation_matches_cpython", match);
		if (!strcmp(match, "yes"))
			demo_verdict("the emulation reproduced CPython on this run: threads under a GIL %s I/O in both",
				     !strcmp(vc, "yes") ? "speed up" : "do not speed up");
		else if (!strcmp(match, "no"))
			demo_verdict("the emulation did NOT reproduce CPython on this run: CPython threads help I/O: %s, thread:gil=1: %s",
				     vc, vg);
		else
			demo_verdict("whether the emulation reproduced CPython is inconclusive on this run (%s)",
				     vg ? "one of the two verdicts above is inconclusive"
					: "no thread:gil=1 pool ran");
	}
	if (rp >= 0) {
		double sp = num(t, rp, "speedup"), bal = num(t, rp, "balance");
		demo_verdict("process pool, %d processes: %.2fx (%.2f..%.2fx), using %.0f processes and %.1f MiB of RSS in all",
			     K, SPREAD(rp), num(t, rp, "procs"), num(t, rp, "peak_rss_mb"));
		if (sp < 0.5 * ideal && bal > 1.5)
			demo_verdict("the process pool fell short of its %.0fx ceiling because it spread the requests unevenly: one worker ran %.1fx its fair share (balance %.2f) while others idled",
				     ideal, bal, bal);
		if (rt >= 0) {
			double st = num(t, rt, "speedup");
			bool overlap = num(t, rp, "speedup_lo") <= num(t, rt, "speedup_hi") &&
				       num(t, rt, "speedup_lo") <= num(t, rp, "speedup_hi");
			/* The lesson only where the numbers carry it: not when
			 * processes were faster beyond the spread. */
			bool faster = !overlap && sp > st;
			demo_verdict("against the thread pool, processes reached %.2fx vs %.2fx (%s) and cost %.1fx the memory (%.1f vs %.1f MiB) and %.1fx the CPU (%.3f vs %.3f s)%s",
				     sp, st,
				     overlap ? "the same within the rounds' spread" :
				     sp < st ? "slower" : "faster",
				     num(t, rp, "peak_rss_mb") / num(t, rt, "peak_rss_mb"),
				     num(t, rp, "peak_rss_mb"), num(t, rt, "peak_rss_mb"),
				     num(t, rp, "cpu_s") / num(t, rt, "cpu_s"),
				     num(t, rp, "cpu_s"), num(t, rt, "cpu_s"),
				     faster ? "" : ": for I/O, processes buy isolation, not speed");
		}
	}
	if (ri >= 0) {
		double si = num(t, ri, "speedup");
		demo_verdict("parex io from one thread: all %lld requests in flight at once, %.2fx the sequential speed (%.2f..%.2fx), %.0f threads in the process, %.1f us of CPU per request",
			     (long long)io_n, SPREAD(ri), num(t, ri, "threads"),
			     num(t, ri, "cpu_us_per_req"));
		int best = rt >= 0 ? rt : rp;
		if (best >= 0) {
			double sb = num(t, best, "speedup");
			const char *v = num(t, ri, "speedup_lo") > num(t, best, "speedup_hi") ? "yes"
					: num(t, ri, "speedup_hi") < num(t, best, "speedup_lo") ? "no"
					: "inconclusive";
			demo_verdict_field("io_beats_pool", v);
			if (!strcmp(v, "yes"))
				demo_verdict("parex io beat the %d-worker pool %.2fx to %.2fx beyond the rounds' spread: a pool overlaps only as many waits as it has workers, parex io (%s) overlaps them all",
					     K, si, sb, io_backend_ran);
			else if (!strcmp(v, "no"))
				demo_verdict("the %d-worker pool beat parex io here beyond the rounds' spread (%.2fx vs %.2fx)",
					     K, sb, si);
			else
				demo_verdict("parex io and the %d-worker pool were as fast within the rounds' spread (%.2fx vs %.2fx); io needs no thread per wait",
					     K, si, sb);
		}
	}
#undef SPREAD
	if (rb >= 0 && num(t, rb, "errors") == 0) {
		double peak = num(t, rb, "server_peak_conns");
		char held[160] = "";
		if (!isnan(peak))
			snprintf(held, sizeof(held),
				 "; its server, a parex io responder in one process, held %.0f connections open at once",
				 peak);
		demo_verdict("burst: %lld requests in flight from one thread completed in %.3f s (%.0f req/s)%s",
			     (long long)opt_burst, num(t, rb, "wall_s"),
			     num(t, rb, "req_per_s"), held);
	}
	demo_print_verdict();

	demo_json_set("machine", demo_machine_json(&mach));
	demo_json_set("rounds", json_integer(opt_rounds));
	demo_json_set("url", demo_json_str(tgt.url));
	demo_json_set("latency_ms", json_real(opt_url ? 0.0 : opt_latency_ms));
	demo_json_set("own_server", json_boolean(!opt_url));
	demo_json_set("timeline_png", tl_png);
	int rc = demo_write_outputs(&o, t) ? 1 : fail;
	if (o.plot) {
		char data[4096];
		size_t len = 0;
		for (int i = 0; i < demo_table_rows(t) && len < sizeof(data) - 200; i++)
			len += (size_t)snprintf(data + len, sizeof(data) - len,
						"\"%s\" %.4f\n", demo_table_str(t, i, "mode"),
						num(t, i, "wall_s"));
		demo_plot_bars(o.plot, "demo_io: wall time per mode",
			       "seconds (log)", true, data);
	}
	demo_table_free(t);
	return rc;
}
