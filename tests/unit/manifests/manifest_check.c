/* manifest_check: runs the C validator on one agent.json and prints "valid" (or, with -n,
 * the normalized manifest) on stdout, or the one-line error on stderr. Exit 0 valid, 1
 * invalid, 2 usage. schema_agree.py compares its verdicts with the JSON Schema's. */
#include "manifest.h"

#include <stdio.h>
#include <string.h>

static int usage(void)
{
	fprintf(stderr, "usage: manifest_check [-n] PATH\n");
	return 2;
}

int main(int argc, char **argv)
{
	bool normalize = argc == 3 && strcmp(argv[1], "-n") == 0;
	char err[MANIFEST_ERR_MAX];
	struct manifest *m;

	if (argc != 2 + normalize)
		return usage();
	if (manifest_load(argv[argc - 1], &m, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (normalize) {
		json_t *doc = manifest_to_json(m);
		json_dumpf(doc, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(doc);
	} else {
		puts("valid");
	}
	manifest_free(m);
	return 0;
}
