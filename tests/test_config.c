/*
 * tests/test_config.c - configuration layers and their errors: specs, the
 * INI file (lines of any length, directories, unreadable files),
 * PAREX_EXECUTOR, precedence, the program's opt-in default file (never
 * ./parex.conf on parex's own), and messages that name the key and the
 * source however long the value.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
		{ "thread:workers=0", "argument: bad value '0' for key 'workers' (expected an integer 1..4096, or auto)" },
		{ "thread:workers=-1", "argument: bad value '-1' for key 'workers' (expected an integer 1..4096, or auto)" },
		{ "thread:workers=two", "argument: bad value 'two' for key 'workers' (expected an integer 1..4096, or auto)" },
		{ "thread:workers=99999999999999999999", "argument: bad value '99999999999999999999' for key 'workers' (expected an integer 1..4096, or auto)" },
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
			    "spec: bad value '2x' for key 'workers' (expected an integer 1..4096, or auto)");
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
				 "(expected an integer 1..4096, or auto)");
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

static void workers_default_to_available_cpus(void **state)
{
	(void)state;
	int n = px_available_parallelism();
	assert_true(n >= 1 && n <= (int)sysconf(_SC_NPROCESSORS_ONLN));
	px_executor *ex;
	assert_int_equal(px_executor_open(&ex, "thread", NULL, 0), 0);
	assert_int_equal(px_executor_workers(ex), n);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.workers, (uint64_t)n);
	px_executor_destroy(ex);
	/* auto is a value, so a higher layer can ask for the default back. */
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	assert_int_equal(px_config_apply(cfg, ":workers=7", NULL), 0);
	assert_non_null(strstr(fmt(cfg), ":workers=7,"));
	assert_int_equal(px_config_apply(cfg, ":workers=auto", NULL), 0);
	char want[32];
	snprintf(want, sizeof(want), ":workers=%d,", n);
	assert_non_null(strstr(fmt(cfg), want));
	px_config_destroy(cfg);
}

/* The defaults, every key in table order: px_config_format follows the key
 * table. */
static void format_lists_every_key_with_its_default(void **state)
{
	(void)state;
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	char want[512];
	snprintf(want, sizeof(want),
		 "thread:workers=%d,queue=16384,block=1,max_arg=65536,"
		 "max_result=65536,spin_us=50,gil=0,help=1,task_timeout_ms=0,"
		 "max_tasks_per_worker=0,max_worker_rss=0,cancel_grace_ms=50,"
		 "shm_size=67108864,local=process,workers_per_rank=%d",
		 px_available_parallelism(), px_available_parallelism());
	assert_string_equal(fmt(cfg), want);
	/* Like snprintf: the length it needs, a truncated copy. */
	char small[8];
	assert_int_equal(px_config_format(cfg, small, sizeof(small)), (int)strlen(want));
	assert_string_equal(small, "thread:");
	assert_int_equal(px_config_format(cfg, NULL, 0), (int)strlen(want));
	assert_int_equal(px_config_format(NULL, small, sizeof(small)), -EINVAL);
	px_config_destroy(cfg);
}

/* Loads text as a config file; returns px_config_load_file's code and
 * leaves its message in err. */
static int load_text(const char *text, char *err, size_t len, char *format,
		     size_t flen)
{
	write_conf(text);
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	int r = px_config_load_file(cfg, conf_path);
	snprintf(err, len, "%s", px_config_error(cfg));
	if (format)
		px_config_format(cfg, format, flen);
	px_config_destroy(cfg);
	unlink(conf_path);
	return r;
}

static void long_comment_line_tail_is_not_parsed_as_a_line(void **state)
{
	(void)state;
	/* 215 bytes: libinih reads 200 at a time, and used to take the tail,
	 * "backend = inline", for a line of its own. */
	char text[1024], err[256], f[512];
	snprintf(text, sizeof(text), "[executor]\n# %.*s backend = inline\n",
		 196, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	assert_int_equal(strlen(strchr(text, '#')), 215 + 1);
	assert_int_equal(load_text(text, err, sizeof(err), f, sizeof(f)), 0);
	assert_non_null(strstr(f, "thread:"));
	/* Also with spaces before the comment, CRLF, and ';' comments. */
	char body[600];
	memset(body, 'y', sizeof(body));
	snprintf(text, sizeof(text), "[executor]\r\n   ; %.500s workers = 3\r\nqueue = 8\r\n",
		 body);
	assert_int_equal(load_text(text, err, sizeof(err), f, sizeof(f)), 0);
	assert_non_null(strstr(f, ",queue=8,"));
	assert_null(strstr(f, "workers=3,"));
	/* Long inline comments and trailing space, on keys and sections. */
	snprintf(text, sizeof(text), "[executor]   ; %.300s\nworkers = 3   ; %.300s\n"
		 "queue = 9%.300s\n", body, body,
		 "                                                                   "
		 "                                                                   "
		 "                                                                   ");
	assert_int_equal(load_text(text, err, sizeof(err), f, sizeof(f)), 0);
	assert_non_null(strstr(f, ":workers=3,queue=9,"));
	/* A ';' with no space before it is part of the value, as libinih
	 * has it: a bad value, on the right line. */
	snprintf(text, sizeof(text), "[executor]\nqueue = 9;%.300s\n", body);
	assert_int_equal(load_text(text, err, sizeof(err), f, sizeof(f)), -EINVAL);
	assert_non_null(strstr(err, "too long (key 'queue')"));
	assert_non_null(strstr(err, ":2: "));
	/* An indented long line continues the previous key's value. */
	snprintf(text, sizeof(text), "[executor]\nqueue = 9\n   7   ; %.300s\n", body);
	assert_int_equal(load_text(text, err, sizeof(err), f, sizeof(f)), 0);
	assert_non_null(strstr(f, ",queue=7,"));
}

static void long_comment_line_counts_as_one_line(void **state)
{
	(void)state;
	/* A 300-byte comment, then a bad key on line 3: the message names
	 * line 3, not a line the file does not have. */
	char text[1024], err[256], want[256];
	char body[301];
	memset(body, 'z', 300);
	body[300] = 0;
	snprintf(text, sizeof(text), "[executor]\n#%s\ncolour = blue\n", body);
	assert_int_equal(load_text(text, err, sizeof(err), NULL, 0), -EINVAL);
	snprintf(want, sizeof(want), "%s [executor]: unknown key 'colour' (line 3)",
		 conf_path);
	assert_string_equal(err, want);
	/* A long comment alone is no error at all. */
	snprintf(text, sizeof(text), "#%s\n[executor]\nworkers = 2\n", body);
	assert_int_equal(load_text(text, err, sizeof(err), NULL, 0), 0);
}

static void long_key_line_error_names_line_key_and_limit(void **state)
{
	(void)state;
	char text[2048], err[256], want[256];
	char value[1001];
	memset(value, '9', 1000);
	value[1000] = 0;
	snprintf(text, sizeof(text), "[executor]\nbackend = inline\nworkers = %s\n", value);
	assert_int_equal(load_text(text, err, sizeof(err), NULL, 0), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: line too long (key 'workers'): 1010 bytes, "
				     "at most 198 but in comments", conf_path);
	assert_string_equal(err, want);
	/* An earlier error is reported first; the line numbers are real. */
	snprintf(text, sizeof(text), "[executor]\nno equals sign\nworkers = %s\n", value);
	assert_int_equal(load_text(text, err, sizeof(err), NULL, 0), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: syntax error", conf_path);
	assert_string_equal(err, want);
	/* A NUL byte is refused, naming its line. */
	write_conf("[executor]\nworkers = 2\n");
	FILE *fp = fopen(conf_path, "a");
	assert_non_null(fp);
	fwrite("gil = 1\0\n", 1, 9, fp);
	fclose(fp);
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	assert_int_equal(px_config_load_file(cfg, conf_path), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: a NUL byte (not a text file)", conf_path);
	assert_string_equal(px_config_error(cfg), want);
	assert_non_null(strstr(fmt(cfg), ",gil=0,")); /* unchanged */
	px_config_destroy(cfg);
	unlink(conf_path);
}

static void first_bad_line_is_the_one_reported(void **state)
{
	(void)state;
	char err[256], want[256];
	/* A bad key before a syntax error, and the other way round. */
	assert_int_equal(load_text("[executor]\nqueue = x\nno equals\n", err,
				   sizeof(err), NULL, 0), -EINVAL);
	snprintf(want, sizeof(want), "%s [executor]: bad value 'x' for key 'queue' "
				     "(expected an integer 1..16777216) (line 2)", conf_path);
	assert_string_equal(err, want);
	assert_int_equal(load_text("[executor]\nno equals\nqueue = x\n", err,
				   sizeof(err), NULL, 0), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: syntax error", conf_path);
	assert_string_equal(err, want);
}

static void config_path_that_is_a_directory_is_an_error(void **state)
{
	(void)state;
	char dir[64], err[256], want[256];
	snprintf(dir, sizeof(dir), "/tmp/px_test_confdir_%d", getpid());
	assert_int_equal(mkdir(dir, 0700), 0);
	setenv("PAREX_CONFIG", dir, 1);
	px_executor *ex = (px_executor *)1;
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), -EISDIR);
	assert_null(ex);
	snprintf(want, sizeof(want), "%s: is a directory (expected an INI file)", dir);
	assert_string_equal(err, want);
	/* The program's default file too. */
	unsetenv("PAREX_CONFIG");
	assert_int_equal(px_config_set_default_file(dir), 0);
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), -EISDIR);
	assert_int_equal(px_config_set_default_file(NULL), 0);
	rmdir(dir);
	/* Not a regular file: a FIFO (opened without blocking). */
	assert_int_equal(mkfifo(dir, 0600), 0);
	setenv("PAREX_CONFIG", dir, 1);
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: not a regular file", dir);
	assert_string_equal(err, want);
	unlink(dir);
	/* /dev/null is the empty configuration. */
	setenv("PAREX_CONFIG", "/dev/null", 1);
	assert_int_equal(px_executor_open(&ex, "inline", err, sizeof(err)), 0);
	px_executor_destroy(ex);
	unsetenv("PAREX_CONFIG");
}

static void unreadable_config_file_is_an_error(void **state)
{
	(void)state;
	write_conf("[executor]\nworkers = 2\n");
	assert_int_equal(chmod(conf_path, 0), 0);
	/* As another user (root reads anything), in a child that reports
	 * through its exit status. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 && setresuid(65534, 65534, 65534))
			_exit(10);
		setenv("PAREX_CONFIG", conf_path, 1);
		px_executor *ex;
		char err[256], want[256];
		if (px_executor_open(&ex, NULL, err, sizeof(err)) != -EACCES)
			_exit(11);
		snprintf(want, sizeof(want), "%s: cannot open: Permission denied",
			 conf_path);
		_exit(strcmp(err, want) ? 12 : 0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	unlink(conf_path);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void long_value_keeps_key_and_source_in_message(void **state)
{
	(void)state;
	char spec[1100], err[256];
	memset(spec, 'x', sizeof(spec));
	memcpy(spec, "thread:workers=", 15);
	spec[1015] = 0; /* a 1,000-character value */
	px_executor *ex;
	assert_int_equal(px_executor_open(&ex, spec, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "argument: bad value 'xxxxxxxxxxxxxxxxxxxxxxxxxxxx...' "
				 "for key 'workers' (expected an integer 1..4096, or auto)");
	/* From the environment, and with a control character in it. */
	spec[20] = '\n';
	setenv("PAREX_EXECUTOR", spec, 1);
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "PAREX_EXECUTOR: bad value 'xxxxx?xxxxxxxxxxxxxxxxxxxxxx...' "
				 "for key 'workers' (expected an integer 1..4096, or auto)");
	unsetenv("PAREX_EXECUTOR");
	/* A long unknown key and a long backend are shortened the same way. */
	memset(spec, 'x', sizeof(spec));
	memcpy(spec, "thread:", 7);
	spec[600] = '=';
	spec[601] = '1';
	spec[602] = 0;
	assert_int_equal(px_executor_open(&ex, spec, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "argument: unknown key 'xxxxxxxxxxxxxxxxxxxxxxxxxxxx...'");
	spec[6] = 'x';
	spec[600] = 0;
	assert_int_equal(px_executor_open(&ex, spec, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "argument: unknown backend 'threadxxxxxxxxxxxxxxxxxxxxxx...' "
				 "(expected inline, thread or process)");
	/* A long source keeps its end, and the key still shows. */
	px_config *cfg;
	assert_int_equal(px_config_create(&cfg), 0);
	char source[400];
	memset(source, 's', sizeof(source));
	memcpy(source + sizeof(source) - 12, "/parex.conf", 12);
	assert_int_equal(px_config_set(cfg, "queue", "lots", source), -EINVAL);
	char want[256];
	snprintf(want, sizeof(want), "...%s: bad value 'lots' for key 'queue' "
				     "(expected an integer 1..16777216)",
		 source + strlen(source) - 68);
	assert_string_equal(px_config_error(cfg), want);
	assert_non_null(strstr(want, "ssss/parex.conf: "));
	px_config_destroy(cfg);
}

/* A directory with a parex.conf that would change or break every executor
 * opened with px_executor_open(NULL) if parex read it on its own. */
static void working_directory_parex_conf_is_read_only_on_request(void **state)
{
	(void)state;
	char dir[64], old[4096], path[128];
	assert_non_null(getcwd(old, sizeof(old)));
	snprintf(dir, sizeof(dir), "/tmp/px_test_cwd_%d", getpid());
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/parex.conf", dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("[executor]\nbackend = process\nworkers = 4096\ncolour = blue\n", fp);
	fclose(fp);

	px_config *plain, *here;
	char a[512], b[512], err[256];
	assert_int_equal(px_config_create(&plain), 0);
	assert_int_equal(px_config_load_env(plain), 0);
	px_config_format(plain, a, sizeof(a));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(px_config_create(&here), 0);
	assert_int_equal(px_config_load_env(here), 0);
	px_config_format(here, b, sizeof(b));
	assert_string_equal(a, b); /* exactly as without the file */
	px_executor *ex;
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), 0);
	assert_string_equal(px_executor_backend(ex), "thread");
	assert_int_equal(px_executor_workers(ex), px_available_parallelism());
	px_executor_destroy(ex);

	/* Opting in reads it, with its errors. */
	assert_int_equal(px_config_set_default_file("parex.conf"), 0);
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "parex.conf [executor]: unknown key 'colour' (line 4)");
	/* $PAREX_CONFIG still comes first. */
	setenv("PAREX_CONFIG", "/dev/null", 1);
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), 0);
	px_executor_destroy(ex);
	unsetenv("PAREX_CONFIG");
	/* A default file that does not exist is skipped. */
	assert_int_equal(px_config_set_default_file("no-such.conf"), 0);
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	px_executor_destroy(ex);
	/* Bad arguments; NULL opts out again. */
	assert_int_equal(px_config_set_default_file(""), -EINVAL);
	char huge[PATH_MAX + 8];
	memset(huge, 'a', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = 0;
	assert_int_equal(px_config_set_default_file(huge), -ENAMETOOLONG);
	assert_int_equal(px_config_set_default_file(NULL), 0);
	assert_int_equal(px_executor_open(&ex, NULL, err, sizeof(err)), 0);
	px_executor_destroy(ex);

	assert_int_equal(chdir(old), 0);
	unlink(path);
	rmdir(dir);
	px_config_destroy(plain);
	px_config_destroy(here);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(specs, clean_env),
		cmocka_unit_test_setup(bad_specs, clean_env),
		cmocka_unit_test_setup(env_layer, clean_env),
		cmocka_unit_test_setup(file_layer, clean_env),
		cmocka_unit_test_setup(workers_default_to_available_cpus, clean_env),
		cmocka_unit_test_setup(format_lists_every_key_with_its_default, clean_env),
		cmocka_unit_test_setup(long_comment_line_tail_is_not_parsed_as_a_line, clean_env),
		cmocka_unit_test_setup(long_comment_line_counts_as_one_line, clean_env),
		cmocka_unit_test_setup(long_key_line_error_names_line_key_and_limit, clean_env),
		cmocka_unit_test_setup(first_bad_line_is_the_one_reported, clean_env),
		cmocka_unit_test_setup(config_path_that_is_a_directory_is_an_error, clean_env),
		cmocka_unit_test_setup(unreadable_config_file_is_an_error, clean_env),
		cmocka_unit_test_setup(long_value_keeps_key_and_source_in_message, clean_env),
		cmocka_unit_test_setup(working_directory_parex_conf_is_read_only_on_request, clean_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
