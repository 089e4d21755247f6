/*
 * lib/config_file.c - the configuration's file and environment layers: the
 * INI file (through libinih, a line at a time, so that lines of any length
 * are handled and every message names the file's own line), the program's
 * default file, $PAREX_CONFIG and $PAREX_EXECUTOR.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executor_internal.h"

/* Larger files are refused (a config file is a few lines). */
#define CONF_MAX_BYTES (1u << 20)

/*
 * Reads path whole into a malloc'd, NUL-terminated buffer. A directory, a
 * file that is neither regular nor a character device (/dev/null), and one
 * over CONF_MAX_BYTES are errors, as is any open or read error.
 */
static int read_conf(px_config *cfg, const char *path, char **out, size_t *len)
{
	char p[PX__CLIP_SOURCE + 64];
	px__clip(p, sizeof(p), path, true);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		snprintf(cfg->err, sizeof(cfg->err), "%s: cannot open: %s", p,
			 strerror(e));
		return -e;
	}
	struct stat st;
	int r = 0;
	char *buf = NULL;
	size_t n = 0;
	if (fstat(fd, &st)) {
		r = -errno;
	} else if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
	} else if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
		r = -EINVAL;
		snprintf(cfg->err, sizeof(cfg->err), "%s: not a regular file", p);
	} else if (!(buf = malloc(CONF_MAX_BYTES + 2))) {
		r = -ENOMEM;
	}
	while (!r) {
		ssize_t got = read(fd, buf + n, CONF_MAX_BYTES + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			r = -errno;
		else if (got == 0)
			break;
		else if ((n += (size_t)got) > CONF_MAX_BYTES) {
			r = -EFBIG;
			snprintf(cfg->err, sizeof(cfg->err),
				 "%s: larger than %u bytes", p, CONF_MAX_BYTES);
		}
	}
	close(fd);
	if (r) {
		if (r == -EISDIR)
			snprintf(cfg->err, sizeof(cfg->err),
				 "%s: is a directory (expected an INI file)", p);
		else if (r != -EINVAL && r != -EFBIG)
			snprintf(cfg->err, sizeof(cfg->err), "%s: cannot read: %s",
				 p, strerror(-r));
		free(buf);
		return r;
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

/* One parse of a file: the reader's position and what went wrong. */
struct conf_parse {
	px_config *cfg;
	const char *path;
	const char *at, *end; /* the text not yet handed to libinih */
	int lineno;           /* the line libinih has now */
	int err_line;         /* a key's error (message in cfg->err), or 0 */
	int bad_line;         /* a line libinih cannot take (message in msg) */
	char msg[256];
};

/*
 * libinih's reader: hands over one line of the file per call, so that its
 * line numbers are the file's. libinih reads into a buffer of num bytes
 * (200 in Debian's build); a longer line is handed over without what
 * libinih would ignore anyway (a comment, an inline comment, trailing
 * space), which means the same. A line with a key that is still too long
 * stops the parse with an error naming the line, the key and the limit (no
 * valid value is that long). A NUL byte stops it too.
 */
static char *conf_reader(char *buf, int num, void *stream)
{
	struct conf_parse *x = stream;
	if (x->at >= x->end || x->bad_line)
		return NULL;
	if (num < 3) { /* a libinih built with no room for a line */
		x->bad_line = x->lineno + 1;
		snprintf(x->msg, sizeof(x->msg), "libinih's line buffer (%d) is too small",
			 num);
		return NULL;
	}
	const char *s = x->at;
	const char *nl = memchr(s, '\n', (size_t)(x->end - s));
	size_t n = (size_t)((nl ? nl : x->end) - s);
	x->at = nl ? nl + 1 : x->end;
	x->lineno++;
	if (n && s[n - 1] == '\r')
		n--;
	char p[PX__CLIP_SOURCE];
	px__clip(p, sizeof(p), x->path, true);
	if (memchr(s, 0, n)) {
		x->bad_line = x->lineno;
		snprintf(x->msg, sizeof(x->msg), "%s:%d: a NUL byte (not a text file)",
			 p, x->lineno);
		return NULL;
	}
	if (n + 2 <= (size_t)num) {
		memcpy(buf, s, n);
		memcpy(buf + n, "\n", 2);
		return buf;
	}
	size_t bom = 0, lead;
	if (x->lineno == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
		bom = 3; /* a UTF-8 byte order mark */
	for (lead = bom; lead < n && isspace((unsigned char)s[lead]); lead++)
		;
	if (lead == n || s[lead] == ';' || s[lead] == '#') {
		memcpy(buf, "\n", 2);
		return buf;
	}
	/* Cut what libinih ignores: an inline comment (';' after a space),
	 * what follows a section's ']', trailing space. Keep one leading
	 * space, which makes a continuation line. */
	size_t end = lead;
	bool was_space = false;
	while (end < n && !(was_space && s[end] == ';') &&
	       !(s[lead] == '[' && end > lead && s[end - 1] == ']')) {
		was_space = isspace((unsigned char)s[end]);
		end++;
	}
	while (end > lead && isspace((unsigned char)s[end - 1]))
		end--;
	size_t indent = lead > bom;
	if (indent + (end - lead) + 2 <= (size_t)num) {
		memcpy(buf, " ", indent);
		memcpy(buf + indent, s + lead, end - lead);
		memcpy(buf + indent + (end - lead), "\n", 2);
		return buf;
	}
	char key[PX__CLIP_KEY + 16] = "", kb[PX__CLIP_KEY];
	size_t klen = strcspn(s + lead, "=:");
	if (lead + klen < n) {
		char name[PX__CLIP_KEY];
		size_t m = klen < sizeof(name) - 1 ? klen : sizeof(name) - 1;
		memcpy(name, s + lead, m);
		while (m && isspace((unsigned char)name[m - 1]))
			m--;
		name[m] = 0;
		snprintf(key, sizeof(key), " (key '%s')",
			 px__clip(kb, sizeof(kb), name, false));
	}
	x->bad_line = x->lineno;
	snprintf(x->msg, sizeof(x->msg),
		 "%s:%d: line too long%s: %zu bytes, at most %d but in comments",
		 p, x->lineno, key, n, num - 2);
	return NULL;
}

static int conf_line(void *user, const char *section, const char *name,
		     const char *value)
{
	struct conf_parse *x = user;
	if (strcmp(section, "executor") || x->err_line || !name)
		return 1; /* other sections belong to other components */
	char src[PX__CLIP_SOURCE + 16], p[PX__CLIP_SOURCE - 12];
	snprintf(src, sizeof(src), "%s [executor]", px__clip(p, sizeof(p), x->path, true));
	if (px__config_set_key(x->cfg, name, value ? value : "", src)) {
		x->err_line = x->lineno; /* the message stays in cfg->err */
		return 0;
	}
	return 1;
}

PX_API int px_config_load_file(px_config *cfg, const char *path)
{
	if (!cfg || !path)
		return -EINVAL;
	char *text = NULL;
	size_t len = 0;
	int r = read_conf(cfg, path, &text, &len);
	if (r)
		return r;
	struct px__config saved = cfg->c;
	struct conf_parse x = { .cfg = cfg, .path = path, .at = text,
				.end = text + len };
	/* libinih reports the first line in error, its own or conf_line's. */
	int line = ini_parse_stream(conf_reader, &x, conf_line, &x);
	free(text);
	if (line == 0 && !x.bad_line)
		return 0;
	cfg->c = saved;
	char p[PX__CLIP_SOURCE];
	if (line < 0)
		return -ENOMEM;
	size_t n = strlen(cfg->err);
	if (line > 0 && line == x.err_line)
		snprintf(cfg->err + n, sizeof(cfg->err) - n, " (line %d)", line);
	else if (line > 0)
		snprintf(cfg->err, sizeof(cfg->err), "%s:%d: syntax error",
			 px__clip(p, sizeof(p), path, true), line);
	else
		snprintf(cfg->err, sizeof(cfg->err), "%s", x.msg);
	return -EINVAL;
}

/* ---- the environment's layers ---------------------------------------------- */

/* The program's default file (px_config_set_default_file()), or NULL. */
static pthread_mutex_t default_file_lock = PTHREAD_MUTEX_INITIALIZER;
static char *default_file;

PX_API int px_config_set_default_file(const char *path)
{
	char *copy = NULL;
	if (path) {
		size_t n = strnlen(path, PATH_MAX);
		if (n == 0)
			return -EINVAL;
		if (n == PATH_MAX)
			return -ENAMETOOLONG;
		if (!(copy = strdup(path)))
			return -ENOMEM;
	}
	pthread_mutex_lock(&default_file_lock);
	char *old = default_file;
	default_file = copy;
	pthread_mutex_unlock(&default_file_lock);
	free(old);
	return 0;
}

PX_API int px_config_load_env(px_config *cfg)
{
	if (!cfg)
		return -EINVAL;
	const char *path = getenv("PAREX_CONFIG");
	int r = 0;
	if (path && *path) {
		r = px_config_load_file(cfg, path);
	} else {
		pthread_mutex_lock(&default_file_lock);
		char *file = default_file ? strdup(default_file) : NULL;
		bool lost = default_file && !file;
		pthread_mutex_unlock(&default_file_lock);
		if (lost)
			return -ENOMEM;
		if (file) {
			r = px_config_load_file(cfg, file);
			if (r == -ENOENT) { /* the program's file is optional */
				cfg->err[0] = 0;
				r = 0;
			}
			free(file);
		}
	}
	if (r)
		return r;
	const char *spec = getenv("PAREX_EXECUTOR");
	if (spec && *spec)
		return px_config_apply(cfg, spec, "PAREX_EXECUTOR");
	return 0;
}
