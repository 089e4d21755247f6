/* SPDX-License-Identifier: MIT */
/*
 * tests/test_version.c - the version macros of parex/version.h agree with
 * the CMake project version, with px_version() of the loaded library, and
 * with the SONAME the program loaded.
 */
#include <link.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <parex/parex.h>

static void macros_match_project_version(void **state)
{
	(void)state;
	char buf[64];
	snprintf(buf, sizeof(buf), "%d.%d.%d", PX_VERSION_MAJOR,
		 PX_VERSION_MINOR, PX_VERSION_PATCH);
	assert_string_equal(buf, PX_TEST_PROJECT_VERSION);
	assert_string_equal(PX_VERSION_STRING, PX_TEST_PROJECT_VERSION);
}

static void macros_match_library(void **state)
{
	(void)state;
	assert_non_null(px_version());
	assert_string_equal(px_version(), PX_VERSION_STRING);
}

static void version_numbers_order(void **state)
{
	(void)state;
	assert_int_equal(PX_VERSION_NUM,
			 PX_VERSION(PX_VERSION_MAJOR, PX_VERSION_MINOR,
				    PX_VERSION_PATCH));
	assert_true(PX_VERSION(0, 1, 9) < PX_VERSION(0, 2, 0));
	assert_true(PX_VERSION(0, 255, 255) < PX_VERSION(1, 0, 0));
	assert_true(PX_VERSION(1, 2, 3) == 0x010203);
#if PX_VERSION_NUM < PX_VERSION(0, 1, 0)
	fail_msg("the preprocessor sees PX_VERSION_NUM below 0.1.0");
#endif
}

static int find_parex(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	const char *slash = strrchr(info->dlpi_name, '/');
	const char *base = slash ? slash + 1 : info->dlpi_name;
	if (strncmp(base, "libparex.so", 11) == 0) {
		snprintf(arg, 256, "%s", base);
		return 1;
	}
	return 0;
}

/* The loaded library's file is named after its SONAME, libparex.so.PX_SOVERSION. */
static void soname_carries_the_soversion(void **state)
{
	(void)state;
	char name[256] = "";
	dl_iterate_phdr(find_parex, name);
	if (!name[0])
		skip(); /* linked statically */
	char want[64];
	snprintf(want, sizeof(want), "libparex.so.%d", PX_SOVERSION);
	assert_string_equal(name, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(macros_match_project_version),
		cmocka_unit_test(macros_match_library),
		cmocka_unit_test(version_numbers_order),
		cmocka_unit_test(soname_carries_the_soversion),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
