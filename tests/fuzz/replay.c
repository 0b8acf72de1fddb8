/* replay.c: main() of the fuzz targets in builds without libFuzzer. It runs every input
 * file named on the command line, and every file in every directory named, once through
 * LLVMFuzzerTestOneInput, in name order, so ctest replays the seed corpora in every build.
 * A broken invariant traps, as under libFuzzer; a file that cannot be read fails the run. */
#include "fuzz.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Reads path into a buffer of exactly its size, so that ASan sees any read past the end. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat sb;
	uint8_t *data;

	if (!f || fstat(fileno(f), &sb) < 0) {
		perror(path);
		if (f)
			fclose(f);
		return -1;
	}
	data = malloc(sb.st_size ? (size_t)sb.st_size : 1);
	if (!data || fread(data, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
		perror(path);
		fclose(f);
		free(data);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(data, (size_t)sb.st_size);
	free(data);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int replay_dir(const char *dir, int *count)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, by_name), rc = 0;

	if (n < 0) {
		perror(dir);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char *path = malloc(strlen(dir) + strlen(names[i]->d_name) + 2);
		struct stat sb;

		sprintf(path, "%s/%s", dir, names[i]->d_name);
		if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
			rc |= replay_file(path);
			++*count;
		}
		free(path);
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	int count = 0, rc = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat sb;

		if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
			rc |= replay_dir(argv[i], &count);
		} else {
			rc |= replay_file(argv[i]);
			count++;
		}
	}
	printf("%s: replayed %d inputs%s\n", argv[0], count, rc ? ", some unreadable" : "");
	return rc ? 1 : 0;
}
