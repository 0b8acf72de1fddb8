/* setuid PATH [ARGS]: runs a setuid-root binary with its stdin on a pipe (so it waits for a
 * password where it asks for one) and samples /proc/CHILD/status as fast as it can while the
 * child lives. A privilege gain shows as an effective uid that differs from ours or a nonzero
 * CapEff/CapPrm after the exec; no_new_privs and nosuid mounts must prevent both. */
#include "probe.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct sample {
	char name[64], uid[128], capeff[32], capprm[32];
};

static int read_sample(pid_t pid, struct sample *s)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	return probe_status_field(path, "Name", s->name, sizeof(s->name)) &&
	       probe_status_field(path, "Uid", s->uid, sizeof(s->uid)) &&
	       probe_status_field(path, "CapEff", s->capeff, sizeof(s->capeff)) &&
	       probe_status_field(path, "CapPrm", s->capprm, sizeof(s->capprm));
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *base;
	int in[2], status;
	pid_t pid;
	struct sample s, last = {"", "", "", ""};
	long samples = 0, after_exec = 0;
	double deadline;

	probe_init();
	if (argc < 2) {
		fprintf(stderr, "usage: setuid PATH [ARGS]\n");
		return 2;
	}
	base = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
	probe_note("own ids", "uid=%d euid=%d", (int)getuid(), (int)geteuid());
	if (pipe(in) != 0) {
		perror("pipe");
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		close(in[0]);
		close(in[1]);
		execv(argv[1], argv + 1);
		probe_report(argv[1], -1);
		_exit(127);
	}
	close(in[0]);
	deadline = now() + 3.0;
	while (now() < deadline && read_sample(pid, &s)) {
		samples++;
		if (strncmp(s.name, base, 15) != 0)
			continue;
		/* Credentials are committed within microseconds of the exec; a child still
		 * waiting for a password 300 ms later tells nothing more. */
		if (after_exec++ == 0)
			deadline = now() + 0.3;
		if (strcmp(s.uid, last.uid) || strcmp(s.capeff, last.capeff) ||
		    strcmp(s.capprm, last.capprm)) {
			printf("sample name=%s uid=[%s] capeff=%s capprm=%s\n", s.name, s.uid,
			       s.capeff, s.capprm);
			last = s;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			pid = 0;
			break;
		}
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	probe_note("samples after exec", "%ld", after_exec);
	probe_note("child status", "%s %d", WIFSIGNALED(status) ? "signal" : "exit",
	           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	(void)samples;
	return 0;
}
