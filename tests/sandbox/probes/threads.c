/* threads N [SLEEP_S]: starts N threads; each prints the seccomp mode, no_new_privs and
 * effective capabilities of its own task, then the main thread prints them for every entry of
 * /proc/self/task. With SLEEP_S it prints "ready" and keeps all threads alive that long, so a
 * test can read the same fields from outside. */
#include "probe.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* "printed": every thread has printed its own line; "listed": main has read every task. */
static pthread_barrier_t printed, listed;
static unsigned sleep_s;

static void print_task(const char *who, const char *status_path)
{
	char seccomp[16] = "?", nnp[16] = "?", capeff[32] = "?";

	probe_status_field(status_path, "Seccomp", seccomp, sizeof(seccomp));
	probe_status_field(status_path, "NoNewPrivs", nnp, sizeof(nnp));
	probe_status_field(status_path, "CapEff", capeff, sizeof(capeff));
	printf("%s Seccomp=%s NoNewPrivs=%s CapEff=%s\n", who, seccomp, nnp, capeff);
	fflush(stdout);
}

static void *thread_main(void *arg)
{
	char who[32];

	snprintf(who, sizeof(who), "thread %ld", (long)arg);
	print_task(who, "/proc/thread-self/status");
	pthread_barrier_wait(&printed);
	pthread_barrier_wait(&listed);
	if (sleep_s)
		sleep(sleep_s);
	return NULL;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? (long)probe_parse_ll(argv[1]) : 4;
	pthread_t threads[64];
	DIR *d;
	struct dirent *e;

	probe_init();
	sleep_s = argc > 2 ? (unsigned)probe_parse_ll(argv[2]) : 0;
	if (n < 1 || n > 64)
		n = 4;
	pthread_barrier_init(&printed, NULL, (unsigned)n + 1);
	pthread_barrier_init(&listed, NULL, (unsigned)n + 1);
	for (long i = 0; i < n; i++)
		pthread_create(&threads[i], NULL, thread_main, (void *)i);
	pthread_barrier_wait(&printed);
	print_task("main", "/proc/thread-self/status");
	d = opendir("/proc/self/task");
	while (d && (e = readdir(d))) {
		char path[300], who[300];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		snprintf(who, sizeof(who), "task %s", e->d_name);
		print_task(who, path);
	}
	if (d)
		closedir(d);
	if (sleep_s)
		probe_note("ready", "%d", (int)getpid());
	pthread_barrier_wait(&listed);
	for (long i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	return 0;
}
