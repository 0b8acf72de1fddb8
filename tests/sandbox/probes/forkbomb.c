/* forkbomb MODE [MAX]: "wide" forks up to MAX sleeping children from one parent and reports the
 * first failure; "tree" is the classic bomb where every process keeps forking, bounded to a
 * tree of TREE_FANOUT children per process and TREE_DEPTH levels (1093 processes) so that a
 * broken sandbox cannot exhaust the host's pids. Children sleep (never exit) so the test can
 * check the sandbox removes the whole tree. "wide-reap" kills its children before leaving:
 * that is the variant safe to run without a sandbox. */
#include "probe.h"

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHILDREN 4096
#define TREE_FANOUT 3
#define TREE_DEPTH 6

static void sleep_forever(void)
{
	for (;;)
		pause();
}

static int fork_wide(long max, int reap)
{
	static pid_t children[MAX_CHILDREN];
	long made = 0;

	if (max > MAX_CHILDREN)
		max = MAX_CHILDREN;
	while (made < max) {
		pid_t pid = fork();

		if (pid == 0)
			sleep_forever();
		if (pid < 0) {
			probe_report("fork", -1);
			break;
		}
		children[made++] = pid;
	}
	probe_note("forks succeeded", "%ld", made);
	if (reap) {
		for (long i = 0; i < made; i++)
			kill(children[i], SIGKILL);
		for (long i = 0; i < made; i++)
			waitpid(children[i], NULL, 0);
	}
	return 0;
}

/* Every process forks its share of the tree, children going on to fork their own. Each
 * process tells the root over a pipe how its forks ended (a byte: 0 for all done, else the
 * errno); the root reports the first failure anywhere, or that the whole bounded tree fit. */
static int fork_tree(void)
{
	int depth = 0, report[2];
	unsigned char status = 0;
	bool root = true;
	long done = 0, total = 0, level = 1;

	for (int d = 0; d <= TREE_DEPTH; d++, level *= TREE_FANOUT)
		total += level;
	if (pipe(report) != 0)
		return probe_report("pipe", -1) < 0;
	for (int i = 0; i < TREE_FANOUT && depth < TREE_DEPTH; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			root = false;
			depth++;
			i = -1;
			status = 0;
		} else if (pid < 0 && !status) {
			status = (unsigned char)errno;
		}
	}
	if (!root) {
		if (write(report[1], &status, 1) != 1)
			_exit(1);
		sleep_forever();
	}
	close(report[1]);
	while (!status && done < total - 1) {
		unsigned char b;
		if (read(report[0], &b, 1) != 1)
			break;
		done++;
		status = b;
	}
	if (status) {
		errno = status;
		probe_report("fork", -1);
	}
	probe_note("root", status ? "done" : "whole tree forked");
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	long max = argc > 2 ? (long)probe_parse_ll(argv[2]) : MAX_CHILDREN;

	probe_init();
	if (strcmp(mode, "wide") == 0)
		return fork_wide(max, 0);
	if (strcmp(mode, "wide-reap") == 0)
		return fork_wide(max, 1);
	if (strcmp(mode, "tree") == 0)
		return fork_tree();
	fprintf(stderr, "usage: forkbomb wide|wide-reap|tree [MAX]\n");
	return 2;
}
