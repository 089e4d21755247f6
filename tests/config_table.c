/*
 * tests/config_table.c - px_config_table: prints the configuration key
 * table (lib/config.c) as the markdown table README.md shows, or, with
 * --check README.md, exits 1 when the README's table differs from it.
 *
 *   build/tests/px_config_table                    # print the table
 *   build/tests/px_config_table --check README.md  # what CTest runs
 *
 * Linked with parex_static to reach px__config_markdown().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* lib/config.c, internal (reachable through the static library). */
void px__config_markdown(FILE *out);

#define HEADER "| key | backends | default | meaning |"

/* The README's table: from HEADER to the first line not starting with '|'.
 * Returns a malloc'd string, or NULL if there is none. */
static char *readme_table(const char *path)
{
	FILE *fp = fopen(path, "r");
	if (!fp) {
		perror(path);
		return NULL;
	}
	char *out = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&out, &len);
	char line[4096];
	int in = 0, found = 0;
	while (mem && fgets(line, sizeof(line), fp)) {
		if (!in && !strncmp(line, HEADER, strlen(HEADER)))
			in = found = 1;
		else if (in && line[0] != '|')
			break;
		if (in)
			fputs(line, mem);
	}
	fclose(fp);
	if (mem)
		fclose(mem);
	if (!found) {
		fprintf(stderr, "%s: no line starting with '%s'\n", path, HEADER);
		free(out);
		return NULL;
	}
	return out;
}

int main(int argc, char **argv)
{
	if (argc == 1) {
		px__config_markdown(stdout);
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "--check")) {
		fprintf(stderr, "usage: %s [--check README.md]\n", argv[0]);
		return 2;
	}
	char *want = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&want, &len);
	if (!mem)
		return 2;
	px__config_markdown(mem);
	fclose(mem);
	char *have = readme_table(argv[2]);
	int r = !have ? 2 : strcmp(have, want) ? 1 : 0;
	if (r == 1)
		fprintf(stderr, "%s: the key table differs from lib/config.c's.\n"
				"It should read (print it with %s):\n%s\n"
				"It reads:\n%s",
			argv[2], argv[0], want, have);
	free(have);
	free(want);
	return r;
}
