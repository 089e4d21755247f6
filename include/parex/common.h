/*
 * parex/common.h - what every parex header shares: the export macro, the
 * error convention, time constants.
 *
 * Error convention: every function that can fail returns 0 (or a count) on
 * success and a negative errno value on failure, and never sets errno.
 * Failures that have no errno counterpart use the PX_E* codes below, which
 * live in a range errno never reaches (-4095 .. -4000). px_strerror() names
 * every code.
 */
#ifndef PAREX_COMMON_H
#define PAREX_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(PX_BUILDING)
#define PX_API __attribute__((visibility("default")))
#else
#define PX_API
#endif

/*
 * Aligns a struct member: _Alignas in C, alignas in C++, which give the same
 * layout, so the public structs can be shared between C and C++ code.
 */
#ifdef __cplusplus
#define PX_ALIGNAS(n) alignas(n)
#else
#define PX_ALIGNAS(n) _Alignas(n)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Timeouts are relative, in nanoseconds. PX_FOREVER (any negative value)
 * waits without limit, and so does a timeout too large to add to the clock
 * (INT64_MAX - 1, say): "practically forever" never wraps into "now".
 * 0 polls once without waiting.
 */
#define PX_FOREVER ((int64_t)-1)
#define PX_MSEC ((int64_t)1000000)
#define PX_SEC ((int64_t)1000000000)

enum {
	PX_EWORKERDIED = -4001, /* the worker process died running the task */
	PX_ESHUTDOWN = -4002,   /* the executor no longer accepts work */
	PX_EBADMAGIC = -4003,   /* shared segment: wrong magic number */
	PX_EVERSION = -4004,    /* layout (shm) or program build (mpi) differs */
	PX_EEOF = -4005,        /* queue closed and drained: end of stream */
	PX_ENOBACKEND = -4006,  /* no longer returned: every backend is built in */
	PX_EFORKED = -4040      /* I/O context inherited across fork() */
};

/*
 * Describes an error code: a negative errno value or a PX_E* code.
 * Returns a static string; never NULL, even for unknown codes.
 */
PX_API const char *px_strerror(int err);

/* The library version, "MAJOR.MINOR.PATCH". */
PX_API const char *px_version(void);

#ifdef __cplusplus
}
#endif

#endif /* PAREX_COMMON_H */
