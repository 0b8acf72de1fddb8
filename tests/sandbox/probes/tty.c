/* tty MODE: terminal injection attempts — "tiocsti FD" pushes "id\n" into FD's input queue,
 * "tioclinux FD" asks for a console selection paste, "devtty" opens the controlling terminal
 * and pushes into it, "isatty" reports which of 0-2 are terminals. */
#include "probe.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void inject(const char *what, int fd)
{
	const char *text = "id\n";

	for (const char *c = text; *c; c++)
		if (probe_report(what, ioctl(fd, TIOCSTI, c)) < 0)
			break;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	int fd = argc > 2 ? (int)probe_parse_ll(argv[2]) : 0;

	probe_init();
	if (strcmp(mode, "tiocsti") == 0) {
		inject("ioctl(FD,TIOCSTI)", fd);
	} else if (strcmp(mode, "tioclinux") == 0) {
		char sel = 3; /* TIOCL_PASTESEL */
		probe_report("ioctl(FD,TIOCLINUX)", ioctl(fd, TIOCLINUX, &sel));
	} else if (strcmp(mode, "devtty") == 0) {
		int t = (int)probe_report("open(/dev/tty)", open("/dev/tty", O_RDWR | O_CLOEXEC));
		if (t >= 0)
			inject("ioctl(/dev/tty,TIOCSTI)", t);
	} else if (strcmp(mode, "isatty") == 0) {
		for (int i = 0; i < 3; i++)
			printf("isatty(%d) = %d\n", i, isatty(i));
		probe_report("getsid(0)", getsid(0));
		probe_note("getpid", "%d", (int)getpid());
	} else {
		fprintf(stderr, "usage: tty tiocsti FD | tioclinux FD | devtty | isatty\n");
		return 2;
	}
	return 0;
}
