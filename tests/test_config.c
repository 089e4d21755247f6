/*
 * tests/test_config.c - configuration layers and their errors: specs, the
 * INI file, PAREX_EXECUTOR, precedence, and messages that name the key and
 * the source.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <parex/executor.h>

static char conf_path[64];

static int clean_env(void **state)
{
	(void)state;
	unsetenv("PAREX_EXECUTOR");
	unsetenv("PAREX_CONFIG");
	return 0;
}

static void write_conf(const char *text)
{
	snprintf(conf_path, sizeof(conf_path), "/tmp/px_test_conf_%d.ini", getpid());
	FILE *fp = fopen(conf_path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static const char *fmt(px_config *cfg)
{
	static char buf[512];
	px_config_format(cfg, buf, sizeof(buf));
	return buf;
}

static void specs(void **state)
{
	(void)state;
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	assert_int_equal(px_config_apply(cfg, "process:workers=8,queue=4096", NULL), 0);
	assert_non_null(strstr(fmt(cfg), "process:workers=8,queue=4096,"));
	assert_int_equal(px_config_apply(cfg, "thread", NULL), 0);
	assert_non_null(strstr(fmt(cfg), "thread:workers=8,")); /* keys kept */
	assert_int_equal(px_config_apply(cfg, ":gil=yes, spin_us = 0 ,block=off", NULL), 0);
	assert_non_null(strstr(fmt(cfg), "block=0"));
	assert_non_null(strstr(fmt(cfg), "spin_us=0,gil=1"));
	assert_int_equal(px_config_apply(cfg, "process:shm_size=16M,max_arg=2k", NULL), 0);
	assert_non_null(strstr(fmt(cfg), "max_arg=2048,"));
	assert_non_null(strstr(fmt(cfg), "shm_size=16777216"));
	assert_int_equal(px_config_set(cfg, "task_timeout_ms", "250", "test"), 0);
	assert_non_null(strstr(fmt(cfg), "task_timeout_ms=250,"));
	assert_string_equal(px_config_error(cfg), "");
	px_config_destroy(cfg);
	px_config_destroy(NULL);
}

struct bad {
	const char *spec;
	const char *message;
};

static void bad_specs(void **state)
{
	(void)state;
	static const struct bad cases[] = {
		{ "fiber:workers=2", "argument: unknown backend 'fiber' (expected inline, thread or process)" },
		{ "thread:wrkers=2", "argument: unknown key 'wrkers'" },
		{ "thread:workers=0", "argument: bad value '0' for key 'workers' (expected an integer 1..4096)" },
		{ "thread:workers=-1", "argument: bad value '-1' for key 'workers' (expected an integer 1..4096)" },
		{ "thread:workers=two", "argument: bad value 'two' for key 'workers' (expected an integer 1..4096)" },
		{ "thread:workers=99999999999999999999", "argument: bad value '99999999999999999999' for key 'workers' (expected an integer 1..4096)" },
		{ "thread:queue=0", "argument: bad value '0' for key 'queue' (expected an integer 1..16777216)" },
		{ "thread:gil=maybe", "argument: bad value 'maybe' for key 'gil' (expected 0 or 1)" },
		{ "thread:shm_size=12Q", "argument: bad value '12Q' for key 'shm_size' (expected a size 4K..1T)" },
		{ "thread:workers", "argument: 'workers' has no value (expected key=value)" },
		{ "workers=2", "argument: 'workers=2' is not a spec (expected BACKEND or BACKEND:key=value,...)" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		px_config *cfg;
		assert_int_equal(px_config_create(&cfg), 0);
		char before[512];
		snprintf(before, sizeof(before), "%s", fmt(cfg));
		assert_int_equal(px_config_apply(cfg, cases[i].spec, "argument"), -EINVAL);
		assert_string_equal(px_config_error(cfg), cases[i].message);
		assert_string_equal(fmt(cfg), before); /* a bad spec changes nothing */
		px_executor *ex = (px_executor *)1;
		char err[256];
		assert_int_equal(px_executor_open(&ex, cases[i].spec, err, sizeof(err)), -EINVAL);
		assert_null(ex);
		assert_string_equal(err, cases[i].message);
		px_config_destroy(cfg);
	}
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	assert_int_equal(px_config_apply(NULL, "thread", NULL), -EINVAL);
	assert_int_equal(px_config_apply(cfg, NULL, NULL), -EINVAL);
	assert_int_equal(px_config_set(cfg, NULL, "1", NULL), -EINVAL);
	assert_int_equal(px_config_set(cfg, "workers", "2x", NULL), -EINVAL);
	assert_string_equal(px_config_error(cfg),
			    "spec: bad value '2x' for key 'workers' (expected an integer 1..4096)");
	assert_int_equal(px_config_create(NULL), -EINVAL);
	assert_int_equal(px_executor_create(NULL, cfg), -EINVAL);
	px_config_destroy(cfg);
}

static void env_layer(void **state)
{
	(void)state;
	setenv("PAREX_EXECUTOR", "inline", 1);
	px_executor *ex;
	assert_int_equal(px_executor_open(&ex, NULL, NULL, 0), 0);
	assert_string_equal(px_executor_backend(ex), "inline");
	px_executor_destroy(ex);
	/* The program's spec outranks the environment. */
	assert_int_equal(px_executor_open(&ex, "thread:workers=1", NULL, 0), 0);
	assert_string_equal(px_executor_backend(ex), "thread");
	px_executor_destroy(ex);
	/* A spec of keys only keeps the environment's backend. */
	assert_int_equal(px_executor_open(&ex, ":workers=3", NULL, 0), 0);
	assert_string_equal(px_executor_backend(ex), "inline");
	px_executor_destroy(ex);

	setenv("PAREX_EXECUTOR", "thread:workers=zero", 1);
	char err[256];
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "PAREX_EXECUTOR: bad value 'zero' for key 'workers' "
				 "(expected an integer 1..4096)");
	/* gil only makes sense for threads. */
	setenv("PAREX_EXECUTOR", "inline:gil=1", 1);
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "cannot create the 'inline' executor: gil=1 needs the thread backend");
}

static void file_layer(void **state)
{
	(void)state;
	write_conf("# parex configuration\n[io]\nanything = goes\n\n"
		   "[executor]\nbackend = inline\nworkers = 3\n");
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	assert_int_equal(px_config_load_file(cfg, conf_path), 0);
	assert_non_null(strstr(fmt(cfg), "inline:workers=3,"));
	px_config_destroy(cfg);

	/* Precedence: file < PAREX_EXECUTOR < the program's spec. */
	setenv("PAREX_CONFIG", conf_path, 1);
	px_executor *ex;
	assert_int_equal(px_executor_open(&ex, NULL, NULL, 0), 0);
	assert_string_equal(px_executor_backend(ex), "inline");
	px_executor_destroy(ex);
	setenv("PAREX_EXECUTOR", "thread", 1);
	assert_int_equal(px_executor_open(&ex, NULL, NULL, 0), 0);
	assert_string_equal(px_executor_backend(ex), "thread");
	assert_int_equal(px_executor_workers(ex), 3); /* from the file */
	px_executor_destroy(ex);
	assert_int_equal(px_executor_open(&ex, "inline", NULL, 0), 0);
	assert_string_equal(px_executor_backend(ex), "inline");
	px_executor_destroy(ex);
	unsetenv("PAREX_EXECUTOR");

	/* Errors name the file, the key and the line. */
	write_conf("[executor]\nbackend = thread\nqueue = lots\n");
	char err[256];
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), -EINVAL);
	char want[256];
	snprintf(want, sizeof(want), "%s [executor]: bad value 'lots' for key 'queue' "
				     "(expected an integer 1..16777216) (line 3)", conf_path);
	assert_string_equal(err, want);
	write_conf("[executor]\nthis line has no equals sign\n");
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: syntax error", conf_path);
	assert_string_equal(err, want);
	write_conf("[executor]\ncolour = blue\n");
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s [executor]: unknown key 'colour' (line 2)", conf_path);
	assert_string_equal(err, want);
	unlink(conf_path);

	/* A named file that does not exist is an error, not a silent default. */
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", conf_path);
	assert_string_equal(err, want);
	unsetenv("PAREX_CONFIG");
}

static void workers_default_to_cpus(void **state)
{
	(void)state;
	px_executor *ex;
	assert_int_equal(px_executor_open(&ex, "thread", NULL, 0), 0);
	assert_int_equal(px_executor_workers(ex), (int)sysconf(_SC_NPROCESSORS_ONLN));
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.workers, (uint64_t)sysconf(_SC_NPROCESSORS_ONLN));
	px_executor_destroy(ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(specs, clean_env),
		cmocka_unit_test_setup(bad_specs, clean_env),
		cmocka_unit_test_setup(env_layer, clean_env),
		cmocka_unit_test_setup(file_layer, clean_env),
		cmocka_unit_test_setup(workers_default_to_cpus, clean_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
