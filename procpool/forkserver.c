/*
 * procpool/forkserver.c - the fork server: a small single-threaded process,
 * forked once when a process pool is created, that forks (and reaps) the
 * pool's workers on request.
 *
 * Why a fork server: a worker forked directly from the pool's process would
 * inherit whatever that process is doing at the moment of the fork: locks
 * held by its other threads (a thread pool, an I/O reaper, user threads)
 * stay locked forever in the child. The fork server is forked while the
 * pool is being created and never runs anything but this loop and plain
 * system calls, so every worker, including replacements forked much later
 * while the parent runs many threads, starts from the same known snapshot
 * (Python's forkserver start method, minus the exec).
 *
 * Lifetime and orphans:
 *  - The server notices its parent's death three ways, whichever comes
 *    first: the control socket hangs up (the parent's end closes when it
 *    dies), a pidfd on the parent becomes readable, and, as a backstop,
 *    getppid() changes (checked at least every 200 ms). It then SIGKILLs
 *    its workers, reaps them and exits. It does not use PR_SET_PDEATHSIG:
 *    that signal follows the *thread* that forked it, so a pool created by
 *    a short-lived thread would lose its server when that thread exits.
 *  - Workers set PR_SET_PDEATHSIG(SIGKILL) towards the server (which is
 *    single-threaded, so the thread caveat does not apply) and check
 *    getppid() right after, closing the race with a server that died
 *    before the prctl. So a SIGKILLed pool process takes the server and
 *    every worker down within a fraction of a second.
 *  - Workers are the server's children: it reaps each one (no zombies) and
 *    reports the death to the parent with the wait status. Kill requests go
 *    through the server too: it alone knows whether a pid is still its
 *    unreaped child, so a recycled pid is never signalled.
 *
 * Nothing here uses shared-memory files: the pool's memory is an anonymous
 * shared mapping, so nothing is ever left in /dev/shm.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "forkserver.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

struct fs_state {
	const struct px__fs_conf *conf;
	int sock, sfd, pidfd;
	pid_t self;
	pid_t *pids;
	uint64_t *gens;
	sigset_t worker_mask;
	struct sigaction old_int, old_quit, old_chld;
};

static void fs_send(struct fs_state *s, const struct px__fs_msg *m)
{
	while (send(s->sock, m, sizeof(*m), MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
	/* Release: the collector reads fs_events with acquire before reading
	 * the socket; the bump tells it there is something to read. */
	atomic_fetch_add_explicit(&s->conf->hdr->fs_events, 1, memory_order_release);
	px__pp_bell_ring(s->conf->hdr);
}

static void fs_spawn(struct fs_state *s, int slot, uint64_t gen)
{
	pid_t c = fork();
	if (c == 0) {
		close(s->sock);
		close(s->sfd);
		if (s->pidfd >= 0)
			close(s->pidfd);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != s->self)
			_exit(127); /* the server died before the prctl */
		sigaction(SIGINT, &s->old_int, NULL);
		sigaction(SIGQUIT, &s->old_quit, NULL);
		sigaction(SIGCHLD, &s->old_chld, NULL); /* for the task's own */
		/* A crash must kill the worker, so the pool sees and reports it,
		 * not run a handler the parent installed for itself (a test
		 * harness's longjmp, a crash reporter). The initializer may
		 * install the task's own handlers. */
		static const int fatal[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL,
					     SIGABRT, SIGSYS, SIGTRAP };
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
			sigaction(fatal[i], &dfl, NULL);
		sigprocmask(SIG_SETMASK, &s->worker_mask, NULL);
		char name[32]; /* the kernel keeps 15 characters */
		snprintf(name, sizeof(name), "px-proc-%d", slot);
		prctl(PR_SET_NAME, name); /* what ps and top show */
		s->conf->worker_main(s->conf->ctx, slot, gen);
		_exit(0);
	}
	struct px__fs_msg m = { .slot = slot, .gen = gen };
	if (c < 0) {
		m.op = PX__FS_FORKFAIL;
		m.status = errno;
	} else {
		s->pids[slot] = c;
		s->gens[slot] = gen;
		m.op = PX__FS_SPAWNED;
		m.pid = c;
	}
	fs_send(s, &m);
}

static void fs_reap(struct fs_state *s, bool block)
{
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, block ? 0 : WNOHANG)) > 0) {
		for (int i = 0; i < s->conf->nslots; i++) {
			if (s->pids[i] != p)
				continue;
			s->pids[i] = 0;
			struct px__fs_msg m = { .op = PX__FS_DIED, .slot = i,
						.gen = s->gens[i], .pid = p,
						.status = st };
			if (!block)
				fs_send(s, &m);
			break;
		}
	}
}

/* Kills every worker and exits: the parent is gone or closed the socket. */
static __attribute__((noreturn)) void fs_exit(struct fs_state *s)
{
	for (int i = 0; i < s->conf->nslots; i++)
		if (s->pids[i] > 0)
			kill(s->pids[i], SIGKILL);
	fs_reap(s, true);
	_exit(0);
}

static __attribute__((noreturn)) void fs_main(const struct px__fs_conf *conf,
					      int sock, const sigset_t *mask)
{
	struct fs_state s = { .conf = conf, .sock = sock, .pidfd = -1 };
	s.self = getpid();
	s.worker_mask = *mask;
	/* The snapshot holds nothing of the parent's other threads, so only
	 * system calls and this process's own memory are used from here on. */
	s.pids = calloc((size_t)conf->nslots, sizeof(*s.pids));
	s.gens = calloc((size_t)conf->nslots, sizeof(*s.gens));
	if (!s.pids || !s.gens)
		_exit(126);
	/* Ctrl-C goes to the whole process group: the parent decides what
	 * happens to its pool, so the server ignores it (workers get the
	 * parent's dispositions back). */
	struct sigaction ign = { .sa_handler = SIG_IGN };
	sigaction(SIGINT, &ign, &s.old_int);
	sigaction(SIGQUIT, &ign, &s.old_quit);
	/* The server must see its workers die: a parent that ignores SIGCHLD
	 * (or sets SA_NOCLDWAIT) would have the kernel reap them unseen, and
	 * no death would ever be reported. Workers get the parent's back. */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigaction(SIGCHLD, &dfl, &s.old_chld);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	s.sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s.sfd < 0)
		_exit(126);
	s.pidfd = (int)syscall(SYS_pidfd_open, conf->parent, 0);
	if (getppid() != conf->parent)
		fs_exit(&s);
	for (;;) {
		struct pollfd pf[3] = {
			{ .fd = s.sock, .events = POLLIN },
			{ .fd = s.sfd, .events = POLLIN },
			{ .fd = s.pidfd, .events = POLLIN },
		};
		int n = poll(pf, s.pidfd >= 0 ? 3 : 2, 200);
		if (getppid() != conf->parent)
			fs_exit(&s);
		if (n <= 0)
			continue;
		if (s.pidfd >= 0 && (pf[2].revents & POLLIN))
			fs_exit(&s);
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(s.sfd, &si, sizeof(si)) == sizeof(si))
				;
			fs_reap(&s, false);
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			for (;;) {
				struct px__fs_msg m;
				ssize_t r = recv(s.sock, &m, sizeof(m), MSG_DONTWAIT);
				if (r == 0)
					fs_exit(&s); /* the parent closed or died */
				if (r < 0) {
					if (errno == EINTR)
						continue;
					if (errno == EAGAIN)
						break;
					fs_exit(&s);
				}
				if (r != sizeof(m) || m.slot < 0 ||
				    m.slot >= conf->nslots)
					continue;
				if (m.op == PX__FS_EXIT)
					fs_exit(&s);
				if (m.op == PX__FS_SPAWN)
					fs_spawn(&s, m.slot, m.gen);
				else if (m.op == PX__FS_KILL &&
					 s.pids[m.slot] > 0 && s.gens[m.slot] == m.gen)
					kill(s.pids[m.slot], SIGKILL);
			}
		}
	}
}

int px__fs_start(const struct px__fs_conf *conf, pid_t *pid, int *sock)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* Block SIGCHLD across the fork so the server cannot miss one before
	 * its signalfd exists; the server restores this thread's mask in the
	 * workers. Flush stdio so no buffered output is inherited and written
	 * twice. */
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, &old);
	fflush(NULL);
	pid_t p = fork();
	if (p == 0) {
		close(sv[0]);
		for (int i = 0; i < conf->nclose; i++)
			close(conf->close_fds[i]);
		prctl(PR_SET_NAME, "px-forkserver");
		fs_main(conf, sv[1], &old);
	}
	int err = p < 0 ? -errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(sv[1]);
	if (err) {
		close(sv[0]);
		return err;
	}
	*pid = p;
	*sock = sv[0];
	return 0;
}
