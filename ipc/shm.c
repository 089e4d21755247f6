/*
 * ipc/shm.c - anonymous (memfd) and named (shm_open) shared-memory segments
 * with a checked header. See include/parex/shm.h.
 *
 * Layout of every segment: a 128-byte header, then the caller's data. The
 * header's magic word is written last with a release store, and attachers
 * read it with an acquire load, so an attacher that sees the magic also sees
 * every other header field (and the zero-filled data).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <parex/shm.h>

#define PX__SHM_MAGIC UINT64_C(0x31304d4853585850) /* "PXXSHM01" */
#define PX__SHM_VERSION 1u

struct px__shm_hdr {
	_Atomic uint64_t magic; /* written last: pairs with the attacher's acquire */
	uint32_t version;
	uint32_t hdr_size;
	uint64_t data_size;
	uint64_t total_size;
	int32_t creator_pid;
	uint32_t reserved0;
	uint64_t creator_start; /* /proc/PID/stat start time, 0 if unknown */
	unsigned char pad[PX_SHM_ALIGN - 48];
};
_Static_assert(sizeof(struct px__shm_hdr) == PX_SHM_ALIGN, "header size");

struct px_shm {
	struct px__shm_hdr *hdr; /* the mapping starts here */
	size_t map_size;
	size_t data_size;
	int fd;
	pid_t creator; /* this process created it; 0 when attached */
	unsigned flags;
	char *name; /* NULL when anonymous */
};

/* The start time of pid in clock ticks since boot (field 22 of
 * /proc/PID/stat), so that a reused pid is not taken for the creator.
 * Returns 0 when unknown. */
static uint64_t px__proc_start(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* The command name may hold spaces and ')': skip to the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* p + 1 is the space before field 3 (state); step to the one before
	 * field 22 (starttime). */
	p++;
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return 0;
	return strtoull(p + 1, NULL, 10);
}

static int px__shm_name_check(const char *name)
{
	if (!name || name[0] != '/' || name[1] == '\0')
		return -EINVAL;
	size_t len = strlen(name);
	if (len > PX_SHM_NAME_MAX)
		return -ENAMETOOLONG;
	if (strchr(name + 1, '/'))
		return -EINVAL;
	return 0;
}

static size_t px__shm_total(size_t size)
{
	return PX_SHM_ALIGN + size;
}

/* Fills the header of a fresh, zero-filled mapping and publishes it. */
static void px__shm_publish(struct px__shm_hdr *h, size_t size)
{
	h->version = PX__SHM_VERSION;
	h->hdr_size = PX_SHM_ALIGN;
	h->data_size = size;
	h->total_size = px__shm_total(size);
	h->creator_pid = (int32_t)getpid();
	h->creator_start = px__proc_start(getpid());
	/* Release: pairs with the acquire load in px__shm_check(); everything
	 * above is visible to whoever sees the magic. */
	atomic_store_explicit(&h->magic, PX__SHM_MAGIC, memory_order_release);
}

static int px__shm_new(px_shm **out, int fd, void *map, size_t size,
		       const char *name, unsigned flags, bool creator)
{
	px_shm *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	if (name) {
		s->name = strdup(name);
		if (!s->name) {
			free(s);
			return -ENOMEM;
		}
	}
	s->hdr = map;
	s->map_size = px__shm_total(size);
	s->data_size = size;
	s->fd = fd;
	s->creator = creator ? getpid() : 0;
	s->flags = flags;
	*out = s;
	return 0;
}

int px_shm_create_anon(px_shm **out, size_t size)
{
	if (!out || size == 0)
		return -EINVAL;
	if ((uint64_t)size > PX_SHM_SIZE_MAX)
		return -E2BIG;
	*out = NULL;
	size_t total = px__shm_total(size);
	int fd = memfd_create("parex-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	void *map;
	if (fd >= 0) {
		if (ftruncate(fd, (off_t)total) < 0) {
			int err = -errno;
			close(fd);
			return err;
		}
		/* Fix the size: a process we pass the descriptor to cannot
		 * truncate the segment under our mapping (SIGBUS). Best
		 * effort: a kernel without seals still works. */
		(void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
		map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	} else {
		/* No memfd (old kernel, seccomp): plain shared anonymous
		 * memory still gives fork inheritance, just no descriptor. */
		map = mmap(NULL, total, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	}
	if (map == MAP_FAILED) {
		int err = -errno;
		if (fd >= 0)
			close(fd);
		return err;
	}
	px__shm_publish(map, size);
	int r = px__shm_new(out, fd, map, size, NULL, 0, true);
	if (r < 0) {
		munmap(map, total);
		if (fd >= 0)
			close(fd);
	}
	return r;
}

int px_shm_create(px_shm **out, const char *name, size_t size, unsigned flags)
{
	if (!out || size == 0 || (flags & ~(unsigned)PX_SHM_KEEP))
		return -EINVAL;
	int r = px__shm_name_check(name);
	if (r < 0)
		return r;
	if ((uint64_t)size > PX_SHM_SIZE_MAX)
		return -E2BIG;
	*out = NULL;
	size_t total = px__shm_total(size);
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* shm_open applies the umask; make sure the mode is exactly 0600. */
	if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)total) < 0) {
		r = -errno;
		goto fail_fd;
	}
	void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		r = -errno;
		goto fail_fd;
	}
	px__shm_publish(map, size);
	r = px__shm_new(out, fd, map, size, name, flags, true);
	if (r == 0)
		return 0;
	munmap(map, total);
fail_fd:
	close(fd);
	shm_unlink(name);
	return r;
}

/* Checks the header of the segment behind fd; on success maps it whole. */
static int px__shm_check(int fd, void **map_out, size_t *size_out)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size == 0)
		return -EAGAIN; /* created, not yet sized */
	if ((size_t)st.st_size < sizeof(struct px__shm_hdr))
		return -EBADMSG;
	struct px__shm_hdr *h = mmap(NULL, sizeof *h, PROT_READ, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED)
		return -errno;
	/* Acquire: pairs with the release in px__shm_publish(). */
	uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
	int r = 0;
	uint64_t data_size = h->data_size, total = h->total_size;
	if (magic == 0)
		r = -EAGAIN; /* the creator has not published it yet */
	else if (magic != PX__SHM_MAGIC)
		r = PX_EBADMAGIC;
	else if (h->version != PX__SHM_VERSION)
		r = PX_EVERSION;
	else if (h->hdr_size != PX_SHM_ALIGN || total != px__shm_total(data_size) ||
		 data_size == 0 || data_size > PX_SHM_SIZE_MAX)
		r = -EBADMSG;
	else if (total > (uint64_t)st.st_size)
		r = -EBADMSG; /* truncated */
	munmap(h, sizeof *h);
	if (r < 0)
		return r;
	void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	*map_out = map;
	*size_out = data_size;
	return 0;
}

int px_shm_open(px_shm **out, const char *name)
{
	if (!out)
		return -EINVAL;
	int r = px__shm_name_check(name);
	if (r < 0)
		return r;
	*out = NULL;
	int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	void *map;
	size_t size;
	r = px__shm_check(fd, &map, &size);
	if (r == 0) {
		r = px__shm_new(out, fd, map, size, name, 0, false);
		if (r < 0)
			munmap(map, px__shm_total(size));
	}
	if (r < 0)
		close(fd);
	return r;
}

int px_shm_open_fd(px_shm **out, int fd)
{
	if (!out)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	*out = NULL;
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return -errno;
	void *map;
	size_t size;
	int r = px__shm_check(dfd, &map, &size);
	if (r == 0) {
		r = px__shm_new(out, dfd, map, size, NULL, 0, false);
		if (r < 0)
			munmap(map, px__shm_total(size));
	}
	if (r < 0)
		close(dfd);
	return r;
}

int px_shm_close(px_shm *s)
{
	if (!s)
		return 0;
	int r = 0;
	munmap(s->hdr, s->map_size);
	if (s->fd >= 0)
		close(s->fd);
	/* Only the creating process unlinks: a forked child closing its
	 * inherited copy must leave the name to its parent. */
	if (s->name && s->creator == getpid() && !(s->flags & PX_SHM_KEEP)) {
		if (shm_unlink(s->name) < 0 && errno != ENOENT)
			r = -errno;
	}
	free(s->name);
	free(s);
	return r;
}

void *px_shm_data(const px_shm *s)
{
	return s ? (char *)s->hdr + PX_SHM_ALIGN : NULL;
}

size_t px_shm_size(const px_shm *s)
{
	return s ? s->data_size : 0;
}

const char *px_shm_name(const px_shm *s)
{
	return s ? s->name : NULL;
}

int px_shm_fd(const px_shm *s)
{
	return s ? s->fd : -EBADF;
}

int px_shm_unlink(const char *name)
{
	int r = px__shm_name_check(name);
	if (r < 0)
		return r;
	return shm_unlink(name) < 0 ? -errno : 0;
}

/* Alive: the pid exists and, when both are known, started at the recorded
 * time. EPERM from kill() means it exists under another user. */
static bool px__pid_alive(pid_t pid, uint64_t start)
{
	if (pid <= 0)
		return false;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	uint64_t now_start = px__proc_start(pid);
	if (start != 0 && now_start != 0 && now_start != start)
		return false; /* the pid was reused */
	return true;
}

int px_shm_is_stale(const char *name)
{
	int r = px__shm_name_check(name);
	if (r < 0)
		return r;
	int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	/* A header that is not (yet) valid: stale unless the file is young
	 * enough that its creator may still be initialising it. */
	bool young = time(NULL) - st.st_ctime < 2;
	if ((size_t)st.st_size < sizeof(struct px__shm_hdr)) {
		close(fd);
		return young ? 0 : 1;
	}
	struct px__shm_hdr *h = mmap(NULL, sizeof *h, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (h == MAP_FAILED)
		return -errno;
	/* Acquire: pairs with the release in px__shm_publish(). */
	uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
	if (magic != PX__SHM_MAGIC)
		r = young ? 0 : 1;
	else
		r = px__pid_alive(h->creator_pid, h->creator_start) ? 0 : 1;
	munmap(h, sizeof *h);
	return r;
}

int px_shm_remove_stale(const char *name)
{
	int r = px_shm_is_stale(name);
	if (r != 1)
		return r;
	if (shm_unlink(name) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 1;
}
