// SPDX-License-Identifier: MIT
//
// tests/test_cxx.cpp - parex from C++: the umbrella header compiles as
// C++17, its functions link with C linkage, tasks run on the inline and
// thread backends, and the public structs have the layout C gives them.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <parex/parex.h>

#include "test_cxx_layout.h"

static int triple(px_task *t, const void *arg, size_t len)
{
	if (len != sizeof(int64_t))
		return -EINVAL;
	int64_t v;
	std::memcpy(&v, arg, sizeof(v));
	v *= 3;
	return px_task_return(t, &v, sizeof(v));
}

static int run_on(const char *spec)
{
	px_executor *ex = nullptr;
	char err[256] = "";
	int r = px_executor_open(&ex, spec, err, sizeof(err));
	if (r) {
		std::fprintf(stderr, "%s: open: %s (%s)\n", spec, err,
			     px_strerror(r));
		return 1;
	}
	int bad = 0;
	for (int64_t x = 1; x <= 8; x++) {
		px_future *f = nullptr;
		int64_t got = 0;
		r = px_executor_submit(ex, triple, &x, sizeof(x), nullptr, &f);
		if (r == 0)
			r = px_future_get_i64(f, 10 * PX_SEC, &got);
		px_future_release(f);
		if (r != 0 || got != 3 * x) {
			std::fprintf(stderr, "%s: 3 * %lld gave %lld (%s)\n",
				     spec, (long long)x, (long long)got,
				     px_strerror(r));
			bad = 1;
		}
	}
	px_executor_destroy(ex);
	return bad;
}

#define PX_LAYOUT_CXX(type) { #type, sizeof(type), alignof(type) },

int main()
{
	static const px_test_layout cxx[] = { PX_TEST_LAYOUT_TYPES(PX_LAYOUT_CXX) };
	const int n = int(sizeof(cxx) / sizeof(cxx[0]));
	int bad = 0;
	if (n != px_test_n_c_layouts) {
		std::fprintf(stderr, "layout lists differ: %d vs %d\n", n,
			     px_test_n_c_layouts);
		bad = 1;
	}
	for (int i = 0; i < n && i < px_test_n_c_layouts; i++) {
		const px_test_layout &c = px_test_c_layouts[i];
		if (std::strcmp(c.name, cxx[i].name) != 0 ||
		    c.size != cxx[i].size || c.align != cxx[i].align) {
			std::fprintf(stderr,
				     "%s: C size %zu align %zu, C++ size %zu align %zu\n",
				     cxx[i].name, c.size, c.align, cxx[i].size,
				     cxx[i].align);
			bad = 1;
		}
	}
	if (std::strcmp(px_version(), PX_VERSION_STRING) != 0) {
		std::fprintf(stderr, "px_version() %s, headers %s\n",
			     px_version(), PX_VERSION_STRING);
		bad = 1;
	}
	bad |= run_on("inline");
	bad |= run_on("thread:workers=2");
	if (!bad)
		std::printf("C++: %d struct layouts match C; tasks ran on inline and thread\n", n);
	return bad;
}
