/*
 * fuzz/fuzz_http.c - demo_io's URL parser (parse_url) and HTTP reply
 * parsers (http_frame: reply length from the head; http_status), which read
 * what a command line and a network peer send. They are static in
 * demos/demo_io.c, so this file includes it with its main renamed.
 *
 * Name resolution: parse_url calls getaddrinfo(); this target interposes a
 * getaddrinfo that allows numeric hosts only, so a fuzzed host name never
 * reaches DNS (slow, and not what is under test).
 *
 * Input: the first byte picks the parser; the rest is the URL or the reply.
 */
#include <dlfcn.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <unistd.h>

int demo_io_main(int argc, char **argv);
#define main demo_io_main
#include "demo_io.c"
#undef main

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int getaddrinfo(const char *node, const char *service,
		const struct addrinfo *hints, struct addrinfo **res);

int getaddrinfo(const char *node, const char *service,
		const struct addrinfo *hints, struct addrinfo **res)
{
	static int (*real)(const char *, const char *, const struct addrinfo *,
			   struct addrinfo **);
	if (!real)
		real = (int (*)(const char *, const char *, const struct addrinfo *,
				struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
	struct addrinfo h = hints ? *hints : (struct addrinfo){0};
	h.ai_flags |= AI_NUMERICHOST;
	return real ? real(node, service, &h, res) : EAI_FAIL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t which = data[0];
	data++;
	size--;
	/* An exact-size heap copy: ASan sees any read past the reply. */
	char *copy = malloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	if (which & 1) {
		target *t = calloc(1, sizeof *t);
		/* parse_url() explains every refusal on stderr: silence it,
		 * unless PX_FUZZ_VERBOSE is set (to see a report from inside
		 * it when reproducing a crash). */
		static int quiet = -1;
		if (quiet < 0)
			quiet = !getenv("PX_FUZZ_VERBOSE");
		int saved = -1;
		if (quiet) {
			int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
			saved = dup(2);
			dup2(devnull, 2);
			close(devnull);
		}
		int pr = parse_url(copy, t);
		if (saved >= 0) {
			dup2(saved, 2);
			close(saved);
		}
		if (pr == 0) {
			if (t->req_len == 0 || t->req_len >= sizeof t->req ||
			    strlen(t->req) != t->req_len)
				abort();
		}
		free(t);
	} else {
		char *reply = malloc(size ? size : 1);
		memcpy(reply, data, size);
		int64_t want = http_frame(reply, size, NULL);
		if (want > 0 && want < 4)
			abort(); /* a whole reply holds at least its head */
		int st = http_status(reply, size);
		if (st != -EPROTO && (st < 0 || st > 999))
			abort();
		free(reply);
	}
	free(copy);
	return 0;
}
