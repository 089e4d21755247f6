/* A program built against an installed parex: submit, wait, check. */
#include <parex/parex.h>
#include <stdio.h>

static int triple(px_task *t, const void *arg, size_t len)
{
	(void)len;
	int64_t v = *(const int64_t *)arg * 3;
	return px_task_return(t, &v, sizeof(v));
}

int main(void)
{
	px_executor *ex;
	char err[256];
	int r = px_executor_open(&ex, "thread:workers=2", err, sizeof(err));
	if (r) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}
	int64_t x = 14, got = 0;
	px_future *f;
	r = px_executor_submit(ex, triple, &x, sizeof(x), NULL, &f);
	if (!r)
		r = px_future_get_i64(f, PX_FOREVER, &got);
	px_future_release(f);
	px_executor_destroy(ex);
	printf("parex %s: 14 * 3 = %lld (%s)\n", px_version(), (long long)got,
	       px_strerror(r));
	return r == 0 && got == 42 ? 0 : 1;
}
