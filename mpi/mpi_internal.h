/*
 * mpi/mpi_internal.h - libparex-mpi's private declarations: the wire format
 * between ranks and the function identity. Never installed.
 */
#ifndef PX_MPI_INTERNAL_H
#define PX_MPI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "executor_internal.h"

#define PX__MPI_ID_MAX 32 /* build-id bytes kept (GNU ld writes 20) */

/* A function as {module build-id, offset from the module's load address}. */
struct px__mpi_fnid {
	uint8_t id[PX__MPI_ID_MAX];
	uint8_t id_len;
	uint8_t pad[7];
	uint64_t off;
};

/* Encodes fn. 0, -EINVAL (not in executable code of a loaded module),
 * -ENOTSUP (its module has no build-id). px-mpi thread only. */
int px__mpi_fn_encode(const void *fn, struct px__mpi_fnid *out);

/* Finds the function id names in this process. 0, PX_EVERSION (no loaded
 * module has that build-id), -EINVAL (the offset is not code of it). */
int px__mpi_fn_decode(const struct px__mpi_fnid *id, void **fn);

/* The program's own build-id. 0 or -ENOTSUP (linked without one). */
int px__mpi_program_id(struct px__mpi_fnid *out);

/* id as hex into buf. */
void px__mpi_id_hex(const struct px__mpi_fnid *id, char *buf, size_t len);

/* Message tags. Rank 0 -> serving rank: */
#define PX__MPI_TAG_TASK 1    /* records: struct px__mpi_task + argument */
#define PX__MPI_TAG_CANCEL 2  /* uint64_t id: cancel, running or not */
#define PX__MPI_TAG_DROP 3    /* empty: cancel every task not started */
#define PX__MPI_TAG_EXIT 4    /* empty: stop serving, leave the process */
/* Serving rank -> rank 0: */
#define PX__MPI_TAG_RESULT 10 /* records: px__mpi_result + result + message */

#define PX__MPI_T_CHUNK 1u /* a map() chunk: inner is its record function */

struct px__mpi_task {
	uint64_t id;
	int64_t timeout_ns;
	struct px__mpi_fnid fn;
	struct px__mpi_fnid inner;
	uint32_t flags;
	uint32_t arg_len;
};

struct px__mpi_result {
	uint64_t id;
	int32_t err;
	uint32_t res_len;
	uint32_t msg_len; /* without the NUL; the message follows the result */
	uint32_t pad;
};

/* What every rank tells every other at start-up (one MPI_Allgather). */
struct px__mpi_hello {
	struct px__mpi_fnid program;
	int32_t workers;  /* the rank's local pool; 0 on rank 0 */
	int32_t status;   /* 0, or why the rank cannot serve */
	char host[64];
};

#endif /* PX_MPI_INTERNAL_H */
