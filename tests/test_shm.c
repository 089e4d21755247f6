/*
 * tests/test_shm.c - shared-memory segments: anonymous ones shared across
 * fork and passed by descriptor, named ones attached by unrelated code,
 * exclusive creation with mode 0600, header checks (magic, version,
 * truncation), unlink by the creator only, stale segments of a dead
 * creator, and nothing of ours left in /dev/shm afterwards.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <parex/shm.h>

#include "test_ipc_common.h"

static char g_prefix[64];

static const char *nm(const char *tag)
{
	static char buf[8][128];
	static int k;
	char *b = buf[k++ % 8];
	snprintf(b, 128, "/%s-%s", g_prefix, tag);
	return b;
}

static bool exists(const char *name)
{
	char path[256];
	snprintf(path, sizeof path, "/dev/shm%s", name);
	return access(path, F_OK) == 0;
}

static void test_bad_input(void **state)
{
	(void)state;
	px_shm *s = NULL;
	assert_int_equal(px_shm_create_anon(NULL, 10), -EINVAL);
	assert_int_equal(px_shm_create_anon(&s, 0), -EINVAL);
	assert_int_equal(px_shm_create_anon(&s, (size_t)PX_SHM_SIZE_MAX + 1), -E2BIG);
	assert_int_equal(px_shm_create(&s, NULL, 10, 0), -EINVAL);
	assert_int_equal(px_shm_create(&s, "noslash", 10, 0), -EINVAL);
	assert_int_equal(px_shm_create(&s, "/", 10, 0), -EINVAL);
	assert_int_equal(px_shm_create(&s, "/a/b", 10, 0), -EINVAL);
	assert_int_equal(px_shm_create(&s, nm("x"), 0, 0), -EINVAL);
	assert_int_equal(px_shm_create(&s, nm("x"), 10, 1u << 7), -EINVAL);
	assert_int_equal(px_shm_create(NULL, nm("x"), 10, 0), -EINVAL);
	assert_int_equal(px_shm_create(&s, nm("x"), (size_t)PX_SHM_SIZE_MAX + 1, 0), -E2BIG);
	char longname[PX_SHM_NAME_MAX + 2];
	memset(longname, 'a', sizeof longname);
	longname[0] = '/';
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(px_shm_create(&s, longname, 10, 0), -ENAMETOOLONG);
	assert_int_equal(px_shm_open(&s, nm("nonexistent")), -ENOENT);
	assert_int_equal(px_shm_open(NULL, nm("x")), -EINVAL);
	assert_int_equal(px_shm_open(&s, "bad"), -EINVAL);
	assert_int_equal(px_shm_open_fd(&s, -1), -EBADF);
	assert_int_equal(px_shm_unlink(nm("nonexistent")), -ENOENT);
	assert_int_equal(px_shm_unlink("x"), -EINVAL);
	assert_int_equal(px_shm_is_stale(nm("nonexistent")), -ENOENT);
	assert_int_equal(px_shm_remove_stale(nm("nonexistent")), -ENOENT);
	assert_int_equal(px_shm_close(NULL), 0);
	assert_null(px_shm_data(NULL));
	assert_null(px_shm_name(NULL));
	assert_false(exists(nm("x")));
}

static int child_write_anon(void *p)
{
	px_shm *s = p;
	uint64_t *d = px_shm_data(s);
	for (int i = 0; i < 1000; i++)
		d[i] = (uint64_t)i * 3;
	return px_shm_close(s); /* closes the child's copy only */
}

static void test_anon_across_fork(void **state)
{
	(void)state;
	px_shm *s;
	assert_int_equal(px_shm_create_anon(&s, 8000), 0);
	assert_null(px_shm_name(s));
	assert_int_equal(px_shm_size(s), 8000);
	uint64_t *d = px_shm_data(s);
	assert_int_equal((uintptr_t)d % PX_SHM_ALIGN, 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(d[i], 0); /* zero-filled */
	pid_t pid = ipc_fork(child_write_anon, s);
	assert_int_equal(ipc_wait(pid), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(d[i], (uint64_t)i * 3);

	/* A second mapping through the descriptor sees the same bytes. */
	px_shm *t;
	assert_int_equal(px_shm_open_fd(&t, px_shm_fd(s)), 0);
	assert_int_equal(px_shm_size(t), 8000);
	uint64_t *e = px_shm_data(t);
	assert_ptr_not_equal(e, d);
	assert_int_equal(e[999], 999 * 3);
	e[0] = 77;
	assert_int_equal(d[0], 77);
	assert_int_equal(px_shm_close(t), 0);
	assert_int_equal(px_shm_close(s), 0);
}

static int child_open_named(void *p)
{
	const char *name = p;
	px_shm *s;
	int r = px_shm_open(&s, name);
	if (r)
		return 2;
	uint32_t *d = px_shm_data(s);
	if (px_shm_size(s) != 4096 || d[0] != 0xfeed)
		return 3;
	d[1] = 0xbeef;
	/* The child's close never unlinks: it is not the creator. */
	if (px_shm_close(s) != 0)
		return 4;
	return 0;
}

static int child_close_inherited(void *p)
{
	return px_shm_close(p);
}

static void test_named(void **state)
{
	(void)state;
	const char *name = nm("named");
	px_shm *s;
	assert_int_equal(px_shm_create(&s, name, 4096, 0), 0);
	assert_string_equal(px_shm_name(s), name);
	struct stat st;
	assert_int_equal(fstat(px_shm_fd(s), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	px_shm *dup;
	assert_int_equal(px_shm_create(&dup, name, 4096, 0), -EEXIST);
	uint32_t *d = px_shm_data(s);
	d[0] = 0xfeed;
	pid_t pid = ipc_fork(child_open_named, (void *)name);
	assert_int_equal(ipc_wait(pid), 0);
	assert_int_equal(d[1], 0xbeef);
	/* A forked child closing its inherited copy does not unlink. */
	pid = ipc_fork(child_close_inherited, s);
	assert_int_equal(ipc_wait(pid), 0);
	assert_true(exists(name));
	assert_int_equal(px_shm_is_stale(name), 0);
	assert_int_equal(px_shm_remove_stale(name), 0);
	assert_true(exists(name));
	/* The creator's close unlinks. */
	assert_int_equal(px_shm_close(s), 0);
	assert_false(exists(name));

	/* PX_SHM_KEEP leaves it for px_shm_unlink(). */
	assert_int_equal(px_shm_create(&s, name, 100, PX_SHM_KEEP), 0);
	assert_int_equal(px_shm_close(s), 0);
	assert_true(exists(name));
	assert_int_equal(px_shm_open(&s, name), 0);
	assert_int_equal(px_shm_size(s), 100);
	assert_int_equal(px_shm_close(s), 0);
	assert_int_equal(px_shm_unlink(name), 0);
	assert_false(exists(name));
}

/* Damaged segments: foreign magic, other version, truncated file. */
static void test_header_checks(void **state)
{
	(void)state;
	const char *name = nm("hdr");
	px_shm *s;
	/* A file that is not ours at all. */
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	unsigned char junk[256];
	memset(junk, 0x11, sizeof junk);
	assert_int_equal(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
	assert_int_equal(px_shm_open(&s, name), PX_EBADMAGIC);
	/* Too short even for a header. */
	assert_int_equal(ftruncate(fd, 16), 0);
	assert_int_equal(px_shm_open(&s, name), -EBADMSG);
	/* Sized to zero: its creator has not got that far. */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(px_shm_open(&s, name), -EAGAIN);
	close(fd);
	assert_int_equal(px_shm_unlink(name), 0);

	assert_int_equal(px_shm_create(&s, name, 10000, 0), 0);
	unsigned char *hdr = (unsigned char *)px_shm_data(s) - PX_SHM_ALIGN;
	((uint32_t *)hdr)[2] += 1; /* version, after the 8-byte magic */
	px_shm *t;
	assert_int_equal(px_shm_open(&t, name), PX_EVERSION);
	((uint32_t *)hdr)[2] -= 1;
	assert_int_equal(px_shm_open(&t, name), 0);
	assert_int_equal(px_shm_close(t), 0);
	/* Truncated behind the creator's back. */
	assert_int_equal(ftruncate(px_shm_fd(s), PX_SHM_ALIGN + 5000), 0);
	assert_int_equal(px_shm_open(&t, name), -EBADMSG);
	assert_int_equal(px_shm_close(s), 0);
	assert_false(exists(name));
}

static int child_create_and_die(void *p)
{
	px_shm *s;
	if (px_shm_create(&s, p, 4096, 0) != 0)
		return 2;
	kill(getpid(), SIGKILL); /* crash without closing */
	return 3;
}

static void test_stale_segment(void **state)
{
	(void)state;
	const char *name = nm("stale");
	pid_t pid = ipc_fork(child_create_and_die, (void *)name);
	assert_int_equal(ipc_wait(pid), 128 + SIGKILL);
	assert_true(exists(name));
	px_shm *s;
	assert_int_equal(px_shm_create(&s, name, 4096, 0), -EEXIST);
	assert_int_equal(px_shm_is_stale(name), 1);
	assert_int_equal(px_shm_remove_stale(name), 1);
	assert_false(exists(name));
	assert_int_equal(px_shm_is_stale(name), -ENOENT);
	assert_int_equal(px_shm_create(&s, name, 4096, 0), 0);
	assert_int_equal(px_shm_is_stale(name), 0);
	assert_int_equal(px_shm_close(s), 0);
}

/* Run last: nothing with our prefix may remain. */
static void test_dev_shm_clean(void **state)
{
	(void)state;
	DIR *d = opendir("/dev/shm");
	if (!d)
		skip();
	struct dirent *e;
	int left = 0;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, g_prefix, strlen(g_prefix)) == 0)
			left++;
	closedir(d);
	assert_int_equal(left, 0);
}

int main(void)
{
	snprintf(g_prefix, sizeof g_prefix, "parex-test-shm-%d", (int)getpid());
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_anon_across_fork),
		cmocka_unit_test(test_named),
		cmocka_unit_test(test_header_checks),
		cmocka_unit_test(test_stale_segment),
		cmocka_unit_test(test_dev_shm_clean),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
