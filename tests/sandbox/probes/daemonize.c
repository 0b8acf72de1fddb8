/* daemonize [stay]: the classic escape from supervision — fork, setsid, fork again, ignore
 * SIGHUP/SIGTERM, close the standard fds — leaving a grandchild that sleeps up to 60 s. The
 * parent prints the daemon's pid and exits at once, or with "stay" sleeps too (for tests that
 * kill the supervisor mid-run). */
#include "probe.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int pipefd[2];
	pid_t child, daemon_pid = 0;

	probe_init();
	if (pipe(pipefd) != 0)
		return 1;
	child = fork();
	if (child == 0) {
		setsid();
		if (fork() == 0) {
			pid_t self = getpid();

			signal(SIGHUP, SIG_IGN);
			signal(SIGTERM, SIG_IGN);
			if (write(pipefd[1], &self, sizeof(self)) != sizeof(self))
				_exit(1);
			close(pipefd[1]);
			close(0);
			close(1);
			close(2);
			sleep(60);
			_exit(0);
		}
		_exit(0);
	}
	close(pipefd[1]);
	waitpid(child, NULL, 0);
	if (read(pipefd[0], &daemon_pid, sizeof(daemon_pid)) != sizeof(daemon_pid))
		daemon_pid = -1;
	probe_note("daemon pid", "%d", (int)daemon_pid);
	if (argc > 1 && strcmp(argv[1], "stay") == 0) {
		probe_note("ready", "1");
		sleep(60);
	}
	return 0;
}
