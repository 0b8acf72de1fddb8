/* frames MODE: writes one kind of broken protocol traffic on fd 3 (DESIGN §4: newline-
 * delimited JSON objects with "t") and then waits up to 5 s for the host to end it, so the
 * daemon's reader can be shown to answer protocol_error for this agent only. Modes:
 * invalid-json, invalid-utf8, no-type, long-line BYTES, truncated (half a frame, then EOF),
 * byte-at-a-time, unknown-run, out-of-order (done before ready), never-read (ready, then
 * never reads while the host writes). */
#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FD 3

static void put(const char *bytes, size_t len)
{
	while (len > 0) {
		ssize_t n = write(FD, bytes, len);

		if (n < 0) {
			probe_report("write(3)", -1);
			exit(0);
		}
		bytes += n;
		len -= (size_t)n;
	}
}

static void put_str(const char *s)
{
	put(s, strlen(s));
}

static void long_line(long bytes)
{
	static char chunk[65536];
	const char *head = "{\"t\":\"log\",\"level\":\"info\",\"msg\":\"";

	memset(chunk, 'x', sizeof(chunk));
	put_str(head);
	for (long left = bytes; left > 0; left -= (long)sizeof(chunk))
		put(chunk, left < (long)sizeof(chunk) ? (size_t)left : sizeof(chunk));
	put_str("\"}\n");
}

static void byte_at_a_time(void)
{
	const char *frame = "{\"t\":\"ready\"}\n";
	struct timespec gap = {0, 20 * 1000 * 1000};

	for (const char *c = frame; *c; c++) {
		put(c, 1);
		nanosleep(&gap, NULL);
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	probe_init();
	if (strcmp(mode, "invalid-json") == 0)
		put_str("{\"t\":\"ready\",}\n");
	else if (strcmp(mode, "invalid-utf8") == 0)
		put_str("{\"t\":\"log\",\"level\":\"info\",\"msg\":\"\xc3\x28\xff\"}\n");
	else if (strcmp(mode, "no-type") == 0)
		put_str("{\"run\":\"r1\",\"output\":{}}\n");
	else if (strcmp(mode, "long-line") == 0 && argc == 3)
		long_line((long)probe_parse_ll(argv[2]));
	else if (strcmp(mode, "truncated") == 0) {
		put_str("{\"t\":\"ready\"}\n{\"t\":\"done\",\"run\":");
		close(FD);
	} else if (strcmp(mode, "byte-at-a-time") == 0)
		byte_at_a_time();
	else if (strcmp(mode, "unknown-run") == 0)
		put_str(
		    "{\"t\":\"ready\"}\n{\"t\":\"done\",\"run\":\"no-such-run\",\"output\":{}}\n");
	else if (strcmp(mode, "out-of-order") == 0)
		put_str("{\"t\":\"done\",\"run\":\"r1\",\"output\":{}}\n{\"t\":\"ready\"}\n");
	else if (strcmp(mode, "never-read") == 0)
		put_str("{\"t\":\"ready\"}\n");
	else {
		fprintf(stderr, "usage: frames MODE (see the file's first comment)\n");
		return 2;
	}
	/* On stderr: stdout and fd 3 both reach ahsandbox's stdout, in no fixed order. */
	fprintf(stderr, "frames: sent %s\n", mode);
	/* Stay, never reading fd 3: the host must end us, not wait for us. */
	sleep(5);
	return 0;
}
