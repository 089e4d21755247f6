/*
 * tests/test_backend_registry.c - a backend registered from outside
 * lib/config.c's table, as a backend in another library (libparex-mpi)
 * would: from a constructor, with px__backend_register(). It is then opened
 * by name, listed in error messages and in the README's key table, and held
 * to the keys it declares. Linked with parex_static, as such a backend
 * reaches the px__ functions.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <parex/parex.h>

#include "../lib/executor_internal.h"

/* "echo": runs each task in the submitting thread, like inline. */
struct echo_exec {
	struct px_executor ex;
	struct px__counts counts;
};

static const struct px__backend_ops echo_ops;

static int echo_create(px_executor **out, const struct px__config *cfg)
{
	struct echo_exec *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	px__executor_init(&e->ex, &echo_ops, cfg);
	*out = &e->ex;
	return 0;
}

static int echo_submit(px_executor *ex, px_future *f, unsigned flags,
		       int64_t timeout_ns)
{
	(void)flags;
	(void)timeout_ns;
	/* The tests submit from one thread: the counters' single writer. */
	px__task_run(ex, f, 0, &px__future_task_ops,
		     &((struct echo_exec *)ex)->counts, false);
	return 0;
}

static void echo_shutdown(px_executor *ex, bool wait, bool cancel_pending)
{
	(void)ex;
	(void)wait;
	(void)cancel_pending;
}

static void echo_destroy(px_executor *ex)
{
	free(ex);
}

static void echo_stats(px_executor *ex, px_executor_stats *out)
{
	px__counts_add(out, &((struct echo_exec *)ex)->counts);
	out->workers = (uint64_t)ex->cfg.workers;
}

static const struct px__backend_ops echo_ops = {
	.create = echo_create,
	.submit = echo_submit,
	.shutdown = echo_shutdown,
	.destroy = echo_destroy,
	.stats = echo_stats,
	.alloc = px__heap_alloc,
	.free = px__heap_free,
};

static const struct px__backend echo = { "echo", &echo_ops,
					 "workers max_arg max_result spin_us" };

static int registered_at_load = 1;

__attribute__((constructor)) static void echo_register(void)
{
	registered_at_load = px__backend_register(&echo);
}

static int twice(px_task *t, const void *arg, size_t len)
{
	int64_t x;
	memcpy(&x, arg, len);
	x *= 2;
	return px_task_return(t, &x, sizeof(x));
}

static void registered_backend_opens_by_name(void **state)
{
	(void)state;
	assert_int_equal(registered_at_load, 0);
	px_executor *ex;
	char err[256];
	assert_int_equal(px_executor_open(&ex, "echo:workers=3", err, sizeof(err)), 0);
	assert_string_equal(px_executor_backend(ex), "echo");
	assert_int_equal(px_executor_workers(ex), 3);
	int64_t x = 21, y = 0;
	px_future *f;
	assert_int_equal(px_executor_submit(ex, twice, &x, sizeof(x), NULL, &f), 0);
	assert_int_equal(px_future_get_i64(f, PX_FOREVER, &y), 0);
	assert_int_equal(y, 42);
	px_future_release(f);
	px_executor_stats st;
	assert_int_equal(px_executor_stats_get(ex, &st), 0);
	assert_int_equal(st.completed, 1);
	px_executor_destroy(ex);
}

static void registered_backend_is_in_messages_and_table(void **state)
{
	(void)state;
	px_executor *ex;
	char err[256];
	assert_int_equal(px_executor_open(&ex, "fiber", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "argument: unknown backend 'fiber' "
				 "(expected inline, thread, process or echo)");
	/* The keys it declares: gil is strict and echo does not use it. */
	assert_int_equal(px_executor_open(&ex, "echo:gil=1", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "cannot create the 'echo' executor: "
				 "gil=1 needs the thread backend");
	char *md = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&md, &len);
	assert_non_null(mem);
	px__config_markdown(mem);
	fclose(mem);
	assert_non_null(strstr(md, "| `backend` | - | thread | `inline`, `thread`, "
				   "`process` or `echo` |"));
	assert_non_null(strstr(md, "| `spin_us` | thread, process, echo | 50 |"));
	assert_non_null(strstr(md, "| `workers` | all | auto |"));
	assert_non_null(strstr(md, "| `queue` | thread, process | 16384 |"));
	free(md);
}

static void registration_rejects_bad_entries(void **state)
{
	(void)state;
	assert_int_equal(px__backend_register(NULL), -EINVAL);
	assert_int_equal(px__backend_register(&echo), -EEXIST);
	static const struct px__backend bad[] = {
		{ "thread", &echo_ops, "workers" },      /* taken: see below */
		{ "", &echo_ops, "workers" },
		{ "Echo2", &echo_ops, "workers" },
		{ "echo-2", &echo_ops, "workers" },
		{ "a_name_far_too_long", &echo_ops, "workers" },
		{ "echo2", NULL, "workers" },
		{ "echo2", &echo_ops, NULL },
		{ "echo2", &echo_ops, "workers colour" },
		{ NULL, &echo_ops, "workers" },
	};
	assert_int_equal(px__backend_register(&bad[0]), -EEXIST);
	for (size_t i = 1; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(px__backend_register(&bad[i]), -EINVAL);
	assert_null(px__backend_find("echo2"));
}

/* Registrations racing with lookups, then the table full. */
static struct px__backend many[PX__BACKENDS_EXTRA + 1];
static char many_names[PX__BACKENDS_EXTRA + 1][8];

static void *register_one(void *arg)
{
	return (void *)(intptr_t)px__backend_register(arg);
}

static void registration_is_thread_safe_and_bounded(void **state)
{
	(void)state;
	for (int i = 0; i <= PX__BACKENDS_EXTRA; i++) {
		snprintf(many_names[i], sizeof(many_names[i]), "b%d", i);
		many[i] = (struct px__backend){ many_names[i], &echo_ops, "workers" };
	}
	/* echo holds one slot: PX__BACKENDS_EXTRA - 1 more fit. */
	int free_slots = PX__BACKENDS_EXTRA - 1;
	pthread_t th[PX__BACKENDS_EXTRA];
	for (int i = 0; i < free_slots; i++)
		assert_int_equal(pthread_create(&th[i], NULL, register_one, &many[i]), 0);
	for (int k = 0; k < 1000; k++)
		assert_non_null(px__backend_find("echo"));
	for (int i = 0; i < free_slots; i++) {
		void *r;
		assert_int_equal(pthread_join(th[i], &r), 0);
		assert_int_equal((intptr_t)r, 0);
	}
	for (int i = 0; i < free_slots; i++)
		assert_ptr_equal(px__backend_find(many_names[i]), &many[i]);
	assert_int_equal(px__backend_register(&many[free_slots]), -ENOSPC);
	px_executor *ex;
	assert_int_equal(px_executor_open(&ex, "b0:workers=2", NULL, 0), 0);
	assert_string_equal(px_executor_backend(ex), "b0");
	px_executor_destroy(ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(registered_backend_opens_by_name),
		cmocka_unit_test(registered_backend_is_in_messages_and_table),
		cmocka_unit_test(registration_rejects_bad_entries),
		cmocka_unit_test(registration_is_thread_safe_and_bounded),
	};
	unsetenv("PAREX_EXECUTOR");
	unsetenv("PAREX_CONFIG");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
