/*
 * lib/config.c - executor configuration: the backend table, the key table,
 * and the layers applied over the defaults (an INI file, $PAREX_EXECUTOR, the
 * program's spec; later layers win). Every rejected key or value names
 * itself and the layer it came from.
 *
 * The two tables below are the only place a backend or a key is described.
 * Parsing, error messages, px_config_format() and the README's key table
 * (px__config_markdown(), checked by the test test_readme_config_table) all
 * follow from them. Adding a key: one row in keys[] plus its field in struct
 * px__config (lib/executor_internal.h), read by the backends that use it.
 * Adding a backend: one row in builtin_backends[] plus its own files, or, for
 * a backend in another library, px__backend_register() from that library.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "executor_internal.h"

/* ---- the backend table ---------------------------------------------------- */

static const struct px__backend builtin_backends[] = {
	{ "inline", &px__inline_backend, "workers max_arg max_result trace" },
	{ "thread", &px__thread_backend,
	  "workers queue block max_arg max_result spin_us gil help trace" },
	{ "process", &px__process_backend,
	  "workers queue block max_arg max_result spin_us task_timeout_ms "
	  "max_tasks_per_worker max_worker_rss cancel_grace_ms shm_size trace" },
};
#define N_BUILTIN (sizeof(builtin_backends) / sizeof(builtin_backends[0]))

/* The backend of a configuration that names none: the thread pool. */
static const struct px__backend *const default_backend = &builtin_backends[1];

/*
 * Backends registered by other libraries. A slot is filled under reg_lock,
 * then published by the release store of n_extra, which pairs with the
 * acquire load in backend_at(): a reader that sees the count sees the slot.
 */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct px__backend *extra[PX__BACKENDS_EXTRA];
static _Atomic size_t n_extra;

static size_t backend_count(void)
{
	return N_BUILTIN + atomic_load_explicit(&n_extra, memory_order_acquire);
}

/* The i-th backend, i < backend_count(). */
static const struct px__backend *backend_at(size_t i)
{
	return i < N_BUILTIN ? &builtin_backends[i] : extra[i - N_BUILTIN];
}

const struct px__backend *px__backend_find(const char *name)
{
	size_t n = backend_count();
	for (size_t i = 0; i < n; i++)
		if (!strcmp(backend_at(i)->name, name))
			return backend_at(i);
	return NULL;
}

/* Whether b uses the key called name (a word of b->keys). */
static bool backend_uses(const struct px__backend *b, const char *name)
{
	size_t len = strlen(name);
	for (const char *p = b->keys; (p = strstr(p, name)); p += len)
		if ((p == b->keys || p[-1] == ' ') && (p[len] == ' ' || !p[len]))
			return true;
	return false;
}

static const struct key *key_find(const char *name);

static bool backend_valid(const struct px__backend *b)
{
	size_t len = b && b->name ? strlen(b->name) : 0;
	if (len == 0 || len >= PX__BACKEND_NAME_MAX || !b->ops || !b->keys ||
	    !b->ops->create || !b->ops->submit || !b->ops->shutdown ||
	    !b->ops->destroy || !b->ops->stats || !b->ops->alloc || !b->ops->free)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!islower((unsigned char)b->name[i]) &&
		    !isdigit((unsigned char)b->name[i]) && b->name[i] != '_')
			return false;
	/* Every word of keys must be a key. */
	char word[64];
	for (const char *p = b->keys; *p;) {
		size_t w = strcspn(p, " ");
		if (w >= sizeof(word))
			return false;
		memcpy(word, p, w);
		word[w] = 0;
		if (w && !key_find(word))
			return false;
		p += w + (p[w] == ' ');
	}
	return true;
}

PX_API int px__backend_register(const struct px__backend *b)
{
	if (!backend_valid(b))
		return -EINVAL;
	pthread_mutex_lock(&reg_lock);
	int r = 0;
	size_t n = atomic_load_explicit(&n_extra, memory_order_relaxed);
	if (px__backend_find(b->name))
		r = -EEXIST;
	else if (n == PX__BACKENDS_EXTRA)
		r = -ENOSPC;
	else {
		extra[n] = b;
		atomic_store_explicit(&n_extra, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&reg_lock);
	return r;
}

/* "inline, thread or process" (quote: "`" for markdown, or ""). */
static void backend_names(char *buf, size_t len, const char *quote,
			  const char *key)
{
	size_t n = backend_count(), shown = 0, total = 0, at = 0;
	for (size_t i = 0; i < n; i++)
		total += !key || backend_uses(backend_at(i), key);
	buf[0] = 0;
	for (size_t i = 0; i < n && at < len; i++) {
		const struct px__backend *b = backend_at(i);
		if (key && !backend_uses(b, key))
			continue;
		shown++;
		const char *sep = shown == 1 ? "" : shown == total ? " or " : ", ";
		int w = snprintf(buf + at, len - at, "%s%s%s%s", sep, quote,
				 b->name, quote);
		at += w > 0 ? (size_t)w : 0;
	}
}

/* ---- the key table ---------------------------------------------------------- */

enum kind {
	K_BACKEND, /* a backend's name */
	K_COUNT,   /* an integer min..max, or auto (stored as 0) */
	K_UINT,    /* an integer min..max */
	K_SIZE,    /* an integer min..max with an optional K, M or G suffix */
	K_BOOL,    /* 0/1, true/false, yes/no, on/off */
	K_WORD,    /* one of the words of expect ("a or b"), as a string */
	K_PATH,    /* a file name, stored as a string; "" for none */
};

struct key {
	const char *name;
	enum kind kind;
	size_t off, size;    /* its field in struct px__config */
	uint64_t min, max;
	const char *def;     /* the default, as a value (NULL: the backend's) */
	const char *expect;  /* what a good value looks like, for errors */
	const char *doc;     /* what it means (markdown, for the README) */
	/* A value other than the default needs a backend that uses the key
	 * (running without the GIL asked for would mislead a measurement);
	 * other keys a backend does not use are ignored. */
	bool strict;
};

#define FIELD(f) offsetof(struct px__config, f), sizeof(((struct px__config *)0)->f)

static const struct key keys[] = {
	{ "backend", K_BACKEND, FIELD(backend), 0, 0, NULL, NULL,
	  NULL /* the backends' names */, false },
	{ "workers", K_COUNT, FIELD(workers), 1, 4096, "auto",
	  "an integer 1..4096, or auto",
	  "worker threads or processes (1..4096); `auto`: "
	  "`px_available_parallelism()`", false },
	{ "queue", K_UINT, FIELD(queue), 1, 1u << 24, "16384",
	  "an integer 1..16777216", "submission queue capacity, in tasks", false },
	{ "block", K_BOOL, FIELD(block), 0, 1, "1", "0 or 1",
	  "a full queue blocks `submit` (1) or fails it with -EAGAIN (0)", false },
	{ "max_arg", K_SIZE, FIELD(max_arg), 0, 1u << 30, "64K", "a size up to 1G",
	  "largest argument, bytes", false },
	{ "max_result", K_SIZE, FIELD(max_result), 0, 1u << 30, "64K",
	  "a size up to 1G", "largest result, bytes", false },
	{ "spin_us", K_UINT, FIELD(spin_us), 0, 1000000, "50",
	  "an integer 0..1000000", "how long an idle worker spins before it parks",
	  false },
	{ "gil", K_BOOL, FIELD(gil), 0, 1, "0", "0 or 1",
	  "1: emulate CPython's GIL (one task computes at a time)", true },
	{ "help", K_BOOL, FIELD(help), 0, 1, "1", "0 or 1",
	  "1: a thread that waits with no timeout for one task no worker has "
	  "started runs it itself, in place of a sleeping worker (not with "
	  "`gil=1` or, outside the pool, an initializer; see "
	  "`px_task_worker_id`)", false },
	{ "task_timeout_ms", K_UINT, FIELD(task_timeout_ms), 0,
	  86400000ull * 365, "0", "milliseconds, 0 = none",
	  "kill a task (and its worker) running longer; 0: none", false },
	{ "max_tasks_per_worker", K_UINT, FIELD(max_tasks_per_worker), 0,
	  UINT64_MAX, "0", "an integer, 0 = never",
	  "replace a worker after N tasks; 0: never", false },
	{ "max_worker_rss", K_SIZE, FIELD(max_worker_rss), 0, 1ull << 40, "0",
	  "a size up to 1T, 0 = never",
	  "replace a worker whose private resident memory passed this after a "
	  "task (the task's result is kept); 0: never", false },
	{ "cancel_grace_ms", K_UINT, FIELD(cancel_grace_ms), 0, 86400000, "50",
	  "milliseconds 0..86400000",
	  "`PX_CANCEL_RUNNING`: how long a running task has to see "
	  "`px_task_cancelled()` and return before its worker is killed", false },
	{ "shm_size", K_SIZE, FIELD(shm_size), 4096, 1ull << 40, "64M",
	  "a size 4K..1T",
	  "shared arena for arguments, results and `px_executor_alloc`", false },
	{ "local", K_WORD, FIELD(local), 0, 0, "process", "process or thread",
	  "`mpi` (libparex-mpi): the pool each serving rank runs its tasks on; "
	  "`thread` loses crash isolation (a crashing task ends the job)",
	  false },
	{ "workers_per_rank", K_COUNT, FIELD(workers_per_rank), 1, 4096, "auto",
	  "an integer 1..4096, or auto",
	  "`mpi` (libparex-mpi): workers of each serving rank's local pool; "
	  "`auto`: that rank's `px_available_parallelism()`",
	  false },
	{ "trace", K_PATH, FIELD(trace), 0, 0, "",
	  "a file name (no commas or control characters)",
	  "write the task timeline (Chrome trace-event JSON) to this file when "
	  "the executor is destroyed; empty: `$PAREX_TRACE`, if set",
	  false },
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const struct key *key_find(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
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

static bool parse_bool(const char *v, uint64_t *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i]) || !strcasecmp(v, no[i])) {
			*out = !strcasecmp(v, yes[i]);
			return true;
		}
	}
	return false;
}

/* Stores u in k's field of c (every field holds values up to k->max). */
static void field_store(struct px__config *c, const struct key *k, uint64_t u)
{
	char *p = (char *)c + k->off;
	if (k->size == 1) {
		bool b = u != 0;
		memcpy(p, &b, 1);
	} else if (k->size == 4) {
		uint32_t v = (uint32_t)u;
		memcpy(p, &v, 4);
	} else {
		memcpy(p, &u, 8);
	}
}

static uint64_t field_load(const struct px__config *c, const struct key *k)
{
	const char *p = (const char *)c + k->off;
	if (k->size == 1) {
		bool b;
		memcpy(&b, p, 1);
		return b;
	}
	if (k->size == 4) {
		uint32_t v;
		memcpy(&v, p, 4);
		return v;
	}
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Whether v is one of the words of list ("a or b"; "or" itself is not). */
static bool word_in(const char *list, const char *v)
{
	size_t n = strlen(v);
	for (const char *p = list; n && (p = strstr(p, v)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || !p[n]) &&
		    strcmp(v, "or"))
			return true;
	return false;
}

/* Parses value for k into c. false if it is not a good value. */
static bool key_parse(const struct key *k, const char *value,
		      struct px__config *c)
{
	uint64_t u = 0;
	bool ok = false;
	switch (k->kind) {
	case K_BACKEND:
		if (!px__backend_find(value))
			return false;
		snprintf(c->backend, sizeof(c->backend), "%s", value);
		return true;
	case K_COUNT:
		if (!strcmp(value, "auto")) {
			field_store(c, k, 0);
			return true;
		}
		/* fall through */
	case K_UINT:
	case K_SIZE:
		ok = parse_u64(value, k->kind == K_SIZE, &u) && u >= k->min &&
		     u <= k->max;
		break;
	case K_BOOL:
		ok = parse_bool(value, &u);
		break;
	case K_PATH:
		/* A spec cannot carry a comma; a control character in a file
		 * name is a mistake, not a wish. */
		if (strlen(value) >= k->size || strchr(value, ','))
			return false;
		for (const char *q = value; *q; q++)
			if (iscntrl((unsigned char)*q))
				return false;
		memcpy((char *)c + k->off, value, strlen(value) + 1);
		return true;
	case K_WORD:
		if (!word_in(k->expect, value) || strlen(value) >= k->size)
			return false;
		snprintf((char *)c + k->off, k->size, "%s", value);
		return true;
	}
	if (ok)
		field_store(c, k, u);
	return ok;
}

/* The built-in defaults: every key's default, through its parser. */
static void config_defaults(struct px__config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->backend, sizeof(c->backend), "%s", default_backend->name);
	for (size_t i = 0; i < N_KEYS; i++)
		if (keys[i].def)
			key_parse(&keys[i], keys[i].def, c);
}

/* k's value in c as a spec writes it (workers resolved). */
static void key_format(const struct key *k, const struct px__config *c,
		       char *buf, size_t len)
{
	if (k->kind == K_WORD || k->kind == K_PATH) {
		snprintf(buf, len, "%s", (const char *)c + k->off);
		return;
	}
	uint64_t u = field_load(c, k);
	if (k->kind == K_COUNT && u == 0)
		u = (uint64_t)px_available_parallelism();
	snprintf(buf, len, "%llu", (unsigned long long)u);
}

/* ---- errors ------------------------------------------------------------------ */

const char *px__clip(char *buf, size_t cap, const char *s, bool tail)
{
	size_t n = strlen(s);
	const char *from = s;
	size_t keep = n;
	if (n >= cap) {
		keep = cap - 4;
		from = tail ? s + n - keep : s;
	}
	size_t at = 0;
	if (n >= cap && tail)
		at += (size_t)snprintf(buf, cap, "...");
	for (size_t i = 0; i < keep; i++)
		buf[at++] = iscntrl((unsigned char)from[i]) ? '?' : from[i];
	if (n >= cap && !tail)
		buf[at++] = '.', buf[at++] = '.', buf[at++] = '.';
	buf[at] = 0;
	return buf;
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

int px__config_set_key(px_config *cfg, const char *key, const char *value,
		   const char *source)
{
	char s[PX__CLIP_SOURCE], kb[PX__CLIP_KEY], vb[PX__CLIP_VALUE];
	px__clip(s, sizeof(s), source ? source : "spec", true);
	const struct key *k = key_find(key);
	if (!k)
		return fail(cfg, "%s: unknown key '%s'", s,
			    px__clip(kb, sizeof(kb), key, false));
	if (key_parse(k, value, &cfg->c))
		return 0;
	px__clip(vb, sizeof(vb), value, false);
	if (k->kind == K_BACKEND) {
		char names[128];
		backend_names(names, sizeof(names), "", NULL);
		return fail(cfg, "%s: unknown backend '%s' (expected %s)", s, vb,
			    names);
	}
	return fail(cfg, "%s: bad value '%s' for key '%s' (expected %s)", s, vb,
		    k->name, k->expect);
}

int px__config_check(const struct px__config *cfg, const struct px__backend *b,
		     char *msg, size_t len)
{
	struct px__config d;
	config_defaults(&d);
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key *k = &keys[i];
		if (!k->strict || k->kind == K_PATH || backend_uses(b, k->name) ||
		    field_load(cfg, k) == field_load(&d, k))
			continue;
		if (msg && len) {
			char v[32], names[128];
			key_format(k, cfg, v, sizeof(v));
			backend_names(names, sizeof(names), "", k->name);
			snprintf(msg, len, "%s=%s needs the %s backend", k->name, v,
				 names);
		}
		return -EINVAL;
	}
	return 0;
}

/* ---- the configuration object --------------------------------------------------- */

PX_API int px_config_create(px_config **out)
{
	if (!out)
		return -EINVAL;
	px_config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	config_defaults(&cfg->c);
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

PX_API int px_config_set(px_config *cfg, const char *key, const char *value,
			 const char *source)
{
	if (!cfg || !key || !value)
		return -EINVAL;
	return px__config_set_key(cfg, key, value, source);
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

/* Applies the key=value items of rest (comma-separated), in place. */
static int apply_items(px_config *cfg, char *rest, const char *source)
{
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
			char s[PX__CLIP_SOURCE], kb[PX__CLIP_KEY];
			return fail(cfg, "%s: '%s' has no value (expected key=value)",
				    px__clip(s, sizeof(s), source, true),
				    px__clip(kb, sizeof(kb), item, false));
		}
		*e = 0;
		int r = px__config_set_key(cfg, trim(item), trim(e + 1), source);
		if (r)
			return r;
	}
	return 0;
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
	char *colon = strchr(buf, ':');
	if (!colon && strchr(buf, '=')) {
		char s[PX__CLIP_SOURCE], v[PX__CLIP_VALUE];
		r = fail(cfg, "%s: '%s' is not a spec (expected BACKEND or "
			      "BACKEND:key=value,...)",
			 px__clip(s, sizeof(s), source, true),
			 px__clip(v, sizeof(v), spec, false));
	} else {
		if (colon)
			*colon = 0;
		char *backend = trim(buf);
		if (*backend)
			r = px__config_set_key(cfg, "backend", backend, source);
		if (!r && colon)
			r = apply_items(cfg, colon + 1, source);
	}
	if (r)
		cfg->c = saved;
	free(buf);
	return r;
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
	if (!cfg || (!buf && len))
		return -EINVAL;
	size_t need = 0;
	bool first = true; /* the first key follows the backend's ':' */
	char item[PX__TRACE_PATH_MAX + 64];
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key *k = &keys[i];
		if (k->kind == K_BACKEND) {
			snprintf(item, sizeof(item), "%s", cfg->c.backend);
		} else if (k->kind == K_PATH) {
			const char *v = (const char *)&cfg->c + k->off;
			if (!*v)
				continue; /* unset: as if absent */
			snprintf(item, sizeof(item), "%s%s=%s", first ? ":" : ",",
				 k->name, v);
			first = false;
		} else {
			char v[32];
			key_format(k, &cfg->c, v, sizeof(v));
			snprintf(item, sizeof(item), "%s%s=%s", first ? ":" : ",",
				 k->name, v);
			first = false;
		}
		size_t n = strlen(item);
		if (need < len)
			snprintf(buf + need, len - need, "%s", item);
		need += n;
	}
	if (len && need >= len)
		buf[len - 1] = 0;
	return need > INT_MAX ? INT_MAX : (int)need;
}

void px__config_markdown(FILE *out)
{
	fprintf(out, "| key | backends | default | meaning |\n");
	fprintf(out, "|-----|----------|---------|---------|\n");
	size_t nb = backend_count();
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key *k = &keys[i];
		char users[128] = "all", names[128];
		size_t n = 0;
		for (size_t j = 0; j < nb; j++)
			n += backend_uses(backend_at(j), k->name);
		if (k->kind == K_BACKEND) {
			snprintf(users, sizeof(users), "-");
			backend_names(names, sizeof(names), "`", NULL);
		} else if (n < nb) {
			users[0] = 0;
			for (size_t j = 0, at = 0; j < nb && at < sizeof(users); j++)
				if (backend_uses(backend_at(j), k->name))
					at += (size_t)snprintf(users + at,
							       sizeof(users) - at, "%s%s",
							       at ? ", " : "",
							       backend_at(j)->name);
		}
		fprintf(out, "| `%s` | %s | %s | %s |\n", k->name, users,
			k->def ? k->def : default_backend->name,
			k->doc ? k->doc : names);
	}
}
