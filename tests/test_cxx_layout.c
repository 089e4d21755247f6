/* SPDX-License-Identifier: MIT */
/*
 * tests/test_cxx_layout.c - the C side of test_cxx: sizes and alignments of
 * the public structs as a C compiler lays them out, for the C++ side to
 * compare with its own.
 */
#include <stdalign.h>

#include <parex/parex.h>

#include "test_cxx_layout.h"

#define PX_LAYOUT_C(type) { #type, sizeof(type), alignof(type) },
const struct px_test_layout px_test_c_layouts[] = { PX_TEST_LAYOUT_TYPES(PX_LAYOUT_C) };
const int px_test_n_c_layouts =
	(int)(sizeof(px_test_c_layouts) / sizeof(px_test_c_layouts[0]));
