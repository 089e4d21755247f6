/*
 * parex/shm.h - shared-memory segments.
 *
 * Two kinds:
 *   anonymous  px_shm_create_anon(): memory shared with every process forked
 *              after creation (a memfd, so its descriptor can also be passed
 *              to an unrelated process over a UNIX socket and mapped there
 *              with px_shm_open_fd()).
 *   named      px_shm_create(): a POSIX shared-memory object (/dev/shm) that
 *              unrelated processes attach to by name with px_shm_open().
 *              Created exclusively (O_EXCL) with mode 0600. The creator
 *              unlinks the name when it closes the segment; a segment left by
 *              a creator that died can be found with px_shm_is_stale() and
 *              removed with px_shm_remove_stale().
 *
 * Every segment starts with a private header (magic, layout version, sizes,
 * creator pid and start time) that px_shm_open() checks; the caller's bytes,
 * px_shm_data(), follow it at an offset aligned to PX_SHM_ALIGN and are
 * zero-filled on creation. Each process may map the segment at a different
 * address, so layouts placed in it must use offsets, not pointers
 * (PX_SHM_PTR / PX_SHM_OFF below).
 *
 * A px_shm handle belongs to the process that created or opened it. A forked
 * child inherits a copy of the handle and the mapping: it may use the data
 * and call px_shm_close() on its copy, which unmaps but never unlinks (only
 * the creating process unlinks).
 *
 * Trust: the segment's bytes, header included, are writable by every process
 * that maps it. px_shm_open() / px_shm_open_fd() check the header (magic,
 * version, sizes against each other and against the object's real size) and
 * keep private copies of the sizes; later changes to the header are never
 * read again, so a peer cannot make px_shm_data() / px_shm_size() lie.
 * Anonymous segments are sealed against resizing (F_SEAL_SHRINK and
 * F_SEAL_GROW on the memfd), so a peer holding the descriptor cannot
 * truncate them under the mapping. A named object, or a descriptor from
 * elsewhere that is not sealed, can be truncated by any process allowed to
 * open it, and touching the lost pages then raises SIGBUS: share named
 * segments only with processes that may write them. px_shm_is_stale()
 * believes the creator pid and start time the header records. What the
 * caller builds in the data (rings, queues, sync objects) has its own trust
 * rules: see ring.h, queue.h, sync.h.
 *
 * NULL: functions returning int refuse NULL pointers with -EINVAL, except
 * px_shm_close() (NULL is a no-op, returning 0); px_shm_data(),
 * px_shm_size(), px_shm_name() and px_shm_fd() return NULL, 0, NULL and
 * -EBADF.
 */
#ifndef PAREX_SHM_H
#define PAREX_SHM_H

#include <parex/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct px_shm px_shm;

/* px_shm_data() is aligned to this many bytes (two cache lines). */
#define PX_SHM_ALIGN 128

/* Longest name accepted, without the terminating NUL, leading '/' included. */
#define PX_SHM_NAME_MAX 200

/* Largest data size accepted (1 TiB). */
#define PX_SHM_SIZE_MAX ((uint64_t)1 << 40)

/* Flags for px_shm_create(). */
enum {
	/*
	 * Leave the name in place when the creator closes the segment; someone
	 * must call px_shm_unlink() later.
	 */
	PX_SHM_KEEP = 1u << 0,
};

/*
 * Creates an anonymous segment of size data bytes (zero-filled), shared with
 * processes forked afterwards. The caller owns *out and closes it with
 * px_shm_close(). Returns 0, -EINVAL for NULL out or size 0, -E2BIG above
 * PX_SHM_SIZE_MAX, -ENOMEM, or the negative errno of memfd/mmap.
 */
PX_API int px_shm_create_anon(px_shm **out, size_t size);

/*
 * Creates the named segment `name` ("/something", no other '/') with size
 * data bytes (zero-filled), exclusively and with mode 0600. The header is
 * published last, so a concurrent px_shm_open() never sees a half-made
 * segment as valid. The caller owns *out. Returns 0, -EINVAL (NULL, size 0,
 * bad name or flags), -ENAMETOOLONG, -E2BIG, -EEXIST when the name is taken
 * (possibly by a stale segment: see px_shm_remove_stale()), -ENOMEM, or the
 * negative errno of shm_open/ftruncate/mmap.
 */
PX_API int px_shm_create(px_shm **out, const char *name, size_t size,
			 unsigned flags);

/*
 * Attaches to the named segment `name`, created by this or another process,
 * and checks its header. The caller owns *out; closing it never unlinks.
 * Returns 0, -EINVAL (NULL, bad name), -ENOENT, -EACCES, PX_EBADMAGIC (not a
 * parex segment), PX_EVERSION (other layout version), -EBADMSG (file shorter
 * than its header claims: truncated), -EAGAIN (its creator is still
 * initialising it: retry), or the negative errno of shm_open/mmap.
 */
PX_API int px_shm_open(px_shm **out, const char *name);

/*
 * Attaches to a segment through a file descriptor (an anonymous segment's
 * px_shm_fd() passed over a UNIX socket, or a named one's). The handle dups
 * fd; the caller keeps its own. Same checks and errors as px_shm_open(),
 * plus -EBADF.
 */
PX_API int px_shm_open_fd(px_shm **out, int fd);

/*
 * Unmaps the segment and frees the handle; if this process created a named
 * segment without PX_SHM_KEEP, also unlinks its name. Accepts NULL.
 * Returns 0, or the negative errno of shm_unlink (the handle is freed anyway).
 */
PX_API int px_shm_close(px_shm *s);

/* The caller's bytes: px_shm_size() bytes, aligned to PX_SHM_ALIGN. */
PX_API void *px_shm_data(const px_shm *s);

/* Size of px_shm_data() in bytes, as given at creation. */
PX_API size_t px_shm_size(const px_shm *s);

/* The segment's name ("/..."), or NULL for an anonymous segment. */
PX_API const char *px_shm_name(const px_shm *s);

/* The segment's file descriptor (close-on-exec); owned by the handle. */
PX_API int px_shm_fd(const px_shm *s);

/*
 * Removes a segment's name; processes that have it mapped keep their mapping.
 * Returns 0, -EINVAL, -ENOENT, or the negative errno of shm_unlink.
 */
PX_API int px_shm_unlink(const char *name);

/*
 * Tells whether the named segment is stale: its creator process no longer
 * exists (checked by pid and process start time, so a reused pid does not
 * count as alive), or it has no valid parex header. Returns 1 stale, 0 alive,
 * -ENOENT, -EINVAL, or the negative errno of shm_open.
 */
PX_API int px_shm_is_stale(const char *name);

/*
 * Unlinks the named segment if px_shm_is_stale() says so. Returns 1 removed,
 * 0 left alone (its creator is alive), or px_shm_is_stale()'s errors.
 */
PX_API int px_shm_remove_stale(const char *name);

/* Offsets instead of pointers inside a segment: base is px_shm_data(). */
#define PX_SHM_PTR(base, off) ((void *)((char *)(base) + (off)))
#define PX_SHM_OFF(base, ptr) ((uint64_t)((const char *)(ptr) - (const char *)(base)))

#ifdef __cplusplus
}
#endif

#endif /* PAREX_SHM_H */
