/* SPDX-License-Identifier: MIT */
/*
 * tests/test_cxx_layout.h - the public structs whose layout must not depend
 * on the language (the px_lock family is aligned with PX_ALIGNAS), listed
 * once for the C and the C++ side of test_cxx.
 */
#ifndef PX_TEST_CXX_LAYOUT_H
#define PX_TEST_CXX_LAYOUT_H

#include <stddef.h>

#define PX_TEST_LAYOUT_TYPES(X)                                            \
	X(px_lock) X(px_rlock) X(px_sem) X(px_event) X(px_cond)          \
	X(px_barrier) X(px_counter) X(px_submit_opts) X(px_map_opts)     \
	X(px_executor_stats) X(px_io_config) X(px_io_opts)               \
	X(px_queue_config)

#ifdef __cplusplus
extern "C" {
#endif

struct px_test_layout {
	const char *name;
	size_t size;
	size_t align;
};

extern const struct px_test_layout px_test_c_layouts[];
extern const int px_test_n_c_layouts;

#ifdef __cplusplus
}
#endif

#endif /* PX_TEST_CXX_LAYOUT_H */
