/*
 * lib/config.c - executor configuration: defaults, the INI file, the
 * PAREX_EXECUTOR environment variable and the program's spec, applied in that
 * order (later layers win). Every rejected key or value names itself and the
 * layer it came from.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "executor_internal.h"

int px__online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (int)n;
}

static const struct px__config defaults = {
	.backend = "thread",
	.workers = 0,
	.queue = 16384,
	.block = true,
	.max_arg = 64 * 1024,
	.max_result = 64 * 1024,
	.spin_us = 50,
	.gil = false,
	.task_timeout_ms = 0,
	.max_tasks_per_worker = 0,
	.shm_size = 64ull << 20,
};

static const char *const backends[] = { "inline", "thread", "process" };

PX_API int px_config_create(px_config **out)
{
	if (!out)
		return -EINVAL;
	px_config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	cfg->c = defaults;
	*out = cfg;
	return 0;
}

PX_API void px_config_destroy(px_config *cfg)
{
	free(cfg);
}

PX_API const char *px_config_error(const px_config *cfg)
{
	return cfg ? cfg->err : "";
}

__attribute__((format(printf, 2, 3))) static int fail(px_config *cfg,
						      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cfg->err, sizeof(cfg->err), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Parses an unsigned integer with an optional K/M/G (binary) suffix. */
static bool parse_u64(const char *v, bool suffix, uint64_t *out)
{
	if (!v || !*v || *v == '-' || isspace((unsigned char)*v))
		return false;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v)
		return false;
	unsigned shift = 0;
	if (suffix && *end) {
		switch (toupper((unsigned char)*end)) {
		case 'K': shift = 10; break;
		case 'M': shift = 20; break;
		case 'G': shift = 30; break;
		default: return false;
		}
		end++;
		if (toupper((unsigned char)*end) == 'B' || toupper((unsigned char)*end) == 'I')
			end++;
	}
	if (*end)
		return false;
	if (shift && x > (UINT64_MAX >> shift))
		return false;
	*out = (uint64_t)x << shift;
	return true;
}

static bool parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
	    !strcasecmp(v, "on")) {
		*out = true;
		return true;
	}
	if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
	    !strcasecmp(v, "off")) {
		*out = false;
		return true;
	}
	return false;
}

enum key_kind { K_BACKEND, K_UINT, K_SIZE, K_BOOL };

struct key {
	const char *name;
	enum key_kind kind;
	uint64_t min, max;
	const char *help; /* what a good value looks like */
};

static const struct key keys[] = {
	{ "backend", K_BACKEND, 0, 0, "inline, thread or process" },
	{ "workers", K_UINT, 1, 4096, "an integer 1..4096" },
	{ "queue", K_UINT, 1, 1u << 24, "an integer 1..16777216" },
	{ "block", K_BOOL, 0, 1, "0 or 1" },
	{ "max_arg", K_SIZE, 0, 1u << 30, "a size up to 1G" },
	{ "max_result", K_SIZE, 0, 1u << 30, "a size up to 1G" },
	{ "spin_us", K_UINT, 0, 1000000, "an integer 0..1000000" },
	{ "gil", K_BOOL, 0, 1, "0 or 1" },
	{ "task_timeout_ms", K_UINT, 0, 86400000ull * 365, "milliseconds, 0 = none" },
	{ "max_tasks_per_worker", K_UINT, 0, UINT64_MAX, "an integer, 0 = never" },
	{ "shm_size", K_SIZE, 4096, 1ull << 40, "a size 4K..1T" },
};

static int set_key(px_config *cfg, const char *key, const char *value,
		   const char *source)
{
	if (!source)
		source = "spec";
	const struct key *k = NULL;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].name, key))
			k = &keys[i];
	if (!k)
		return fail(cfg, "%s: unknown key '%s'", source, key);

	uint64_t u = 0;
	bool b = false;
	bool ok = false;
	switch (k->kind) {
	case K_BACKEND:
		ok = false;
		for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
			if (!strcmp(value, backends[i]))
				ok = true;
		if (!ok)
			return fail(cfg, "%s: unknown backend '%s' (expected %s)",
				    source, value, k->help);
		snprintf(cfg->c.backend, sizeof(cfg->c.backend), "%s", value);
		return 0;
	case K_UINT:
	case K_SIZE:
		ok = parse_u64(value, k->kind == K_SIZE, &u) && u >= k->min &&
		     u <= k->max;
		break;
	case K_BOOL:
		ok = parse_bool(value, &b);
		break;
	}
	if (!ok)
		return fail(cfg, "%s: bad value '%s' for key '%s' (expected %s)",
			    source, value, key, k->help);

	if (!strcmp(key, "workers"))
		cfg->c.workers = (int)u;
	else if (!strcmp(key, "queue"))
		cfg->c.queue = (uint32_t)u;
	else if (!strcmp(key, "block"))
		cfg->c.block = b;
	else if (!strcmp(key, "max_arg"))
		cfg->c.max_arg = (uint32_t)u;
	else if (!strcmp(key, "max_result"))
		cfg->c.max_result = (uint32_t)u;
	else if (!strcmp(key, "spin_us"))
		cfg->c.spin_us = (uint32_t)u;
	else if (!strcmp(key, "gil"))
		cfg->c.gil = b;
	else if (!strcmp(key, "task_timeout_ms"))
		cfg->c.task_timeout_ms = (int64_t)u;
	else if (!strcmp(key, "max_tasks_per_worker"))
		cfg->c.max_tasks_per_worker = u;
	else if (!strcmp(key, "shm_size"))
		cfg->c.shm_size = u;
	return 0;
}

PX_API int px_config_set(px_config *cfg, const char *key, const char *value,
			 const char *source)
{
	if (!cfg || !key || !value)
		return -EINVAL;
	return set_key(cfg, key, value, source);
}

/* Trims ASCII space at both ends, in place. */
static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

PX_API int px_config_apply(px_config *cfg, const char *spec, const char *source)
{
	if (!cfg || !spec)
		return -EINVAL;
	if (!source)
		source = "spec";
	char *buf = strdup(spec);
	if (!buf)
		return -ENOMEM;
	/* Validate into a copy, so a bad spec changes nothing. */
	struct px__config saved = cfg->c;
	int r = 0;
	char *rest = buf;
	char *colon = strchr(buf, ':');
	char *eq = strchr(buf, '=');
	if (!colon && eq) {
		r = fail(cfg, "%s: '%s' is not a spec (expected BACKEND or "
			      "BACKEND:key=value,...)", source, spec);
		goto out;
	}
	if (colon)
		*colon = 0;
	char *backend = trim(buf);
	if (*backend && (r = set_key(cfg, "backend", backend, source)))
		goto out;
	rest = colon ? colon + 1 : NULL;
	while (rest && *rest) {
		char *comma = strchr(rest, ',');
		if (comma)
			*comma = 0;
		char *item = trim(rest);
		rest = comma ? comma + 1 : NULL;
		if (!*item)
			continue;
		char *e = strchr(item, '=');
		if (!e) {
			r = fail(cfg, "%s: '%s' has no value (expected key=value)",
				 source, item);
			goto out;
		}
		*e = 0;
		if ((r = set_key(cfg, trim(item), trim(e + 1), source)))
			goto out;
	}
out:
	if (r)
		cfg->c = saved;
	free(buf);
	return r;
}

struct ini_ctx {
	px_config *cfg;
	const char *path;
	int err;
	char msg[256];
};

static int conf_line(void *user, const char *section, const char *name,
		       const char *value)
{
	struct ini_ctx *x = user;
	if (strcmp(section, "executor"))
		return 1; /* other sections belong to other components */
	if (x->err)
		return 1;
	if (!name)
		return 1;
	char src[300];
	snprintf(src, sizeof(src), "%s [executor]", x->path);
	int r = set_key(x->cfg, name, value ? value : "", src);
	if (r) {
		x->err = r;
		snprintf(x->msg, sizeof(x->msg), "%s", x->cfg->err);
		return 0;
	}
	return 1;
}

PX_API int px_config_load_file(px_config *cfg, const char *path)
{
	if (!cfg || !path)
		return -EINVAL;
	FILE *fp = fopen(path, "r");
	if (!fp) {
		int e = errno;
		snprintf(cfg->err, sizeof(cfg->err), "%s: cannot open: %s", path,
			 strerror(e));
		return -e;
	}
	struct px__config saved = cfg->c;
	struct ini_ctx x = { .cfg = cfg, .path = path };
	int line = ini_parse_file(fp, conf_line, &x);
	fclose(fp);
	if (line == 0 && !x.err)
		return 0;
	cfg->c = saved;
	if (x.err) {
		/* Truncation of an overlong message is fine. */
		int n = snprintf(cfg->err, sizeof(cfg->err), "%.200s (line %d)",
				 x.msg, line);
		(void)n;
	}
	else
		snprintf(cfg->err, sizeof(cfg->err), "%s:%d: syntax error", path,
			 line);
	return -EINVAL;
}

PX_API int px_config_load_env(px_config *cfg)
{
	if (!cfg)
		return -EINVAL;
	const char *path = getenv("PAREX_CONFIG");
	int r;
	if (path && *path) {
		if ((r = px_config_load_file(cfg, path)))
			return r;
	} else if (access("parex.conf", R_OK) == 0) {
		if ((r = px_config_load_file(cfg, "parex.conf")))
			return r;
	}
	const char *spec = getenv("PAREX_EXECUTOR");
	if (spec && *spec)
		return px_config_apply(cfg, spec, "PAREX_EXECUTOR");
	return 0;
}

PX_API void px_config_set_initializer(px_config *cfg, px_worker_init_fn fn,
				      void *arg)
{
	if (!cfg)
		return;
	cfg->c.init = fn;
	cfg->c.init_arg = arg;
}

PX_API int px_config_format(const px_config *cfg, char *buf, size_t len)
{
	if (!cfg)
		return -EINVAL;
	const struct px__config *c = &cfg->c;
	int workers = c->workers ? c->workers : px__online_cpus();
	return snprintf(buf, len,
			"%s:workers=%d,queue=%u,block=%d,max_arg=%u,max_result=%u,"
			"spin_us=%u,gil=%d,task_timeout_ms=%lld,"
			"max_tasks_per_worker=%llu,shm_size=%llu",
			c->backend, workers, c->queue, c->block, c->max_arg,
			c->max_result, c->spin_us, c->gil,
			(long long)c->task_timeout_ms,
			(unsigned long long)c->max_tasks_per_worker,
			(unsigned long long)c->shm_size);
}
