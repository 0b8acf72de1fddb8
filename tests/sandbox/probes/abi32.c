/* abi32 MODE: enters the kernel through the 32-bit doors of an x86_64 process — i386
 * `int $0x80` from the main thread or a second thread, the i386 socketcall multiplexer, and
 * x32 numbers (bit 0x40000000) through `syscall`. A filter written for x86_64 only must kill
 * the whole process for each; a surviving main thread prints "survived". */
#include "probe.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "abi32 probes the x86_64 kernel's compat entry points"
#endif

#define I386_GETPID 20
#define I386_SOCKETCALL 102
#define I386_SOCKET 359
#define SOCKETCALL_SOCKET 1
#define X32_BIT 0x40000000L
#define X32_GETPID 39

/* i386 system call through the legacy gate; returns the raw -errno form. */
static long int80(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("int $0x80"
	                 : "=a"(ret)
	                 : "a"(nr), "b"(a), "c"(b), "d"(c)
	                 : "memory", "r8", "r9", "r10", "r11");
	return ret;
}

/* 64-bit `syscall` instruction with a raw number (used for x32 numbers). */
static long syscall_insn(long nr)
{
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr) : "rcx", "r11", "memory");
	return ret;
}

static void report_raw(const char *what, long ret)
{
	if (ret < 0 && ret > -4096)
		probe_report_errno(what, (int)-ret);
	else
		probe_note(what, "%ld", ret);
}

static void *thread_int80(void *arg)
{
	(void)arg;
	report_raw("thread int80(getpid)", int80(I386_GETPID, 0, 0, 0));
	return NULL;
}

static int mode_int80_thread(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, thread_int80, NULL) != 0) {
		perror("pthread_create");
		return 1;
	}
	/* Never join: a thread killed alone would leave the main thread free to carry on. */
	usleep(300 * 1000);
	probe_note("main thread", "survived");
	return 0;
}

static int mode_socketcall(void)
{
	/* socketcall reads its argument block through a 32-bit pointer. */
	unsigned int *args = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);

	if (args == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	args[0] = AF_INET;
	args[1] = SOCK_STREAM;
	args[2] = 0;
	report_raw("int80(socketcall(SYS_SOCKET, AF_INET))",
	           int80(I386_SOCKETCALL, SOCKETCALL_SOCKET, (long)(unsigned long)args, 0));
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	probe_init();
	if (strcmp(mode, "int80-main") == 0)
		report_raw("int80(getpid)", int80(I386_GETPID, 0, 0, 0));
	else if (strcmp(mode, "int80-thread") == 0)
		return mode_int80_thread();
	else if (strcmp(mode, "socketcall") == 0) {
		if (mode_socketcall() != 0)
			return 1;
	} else if (strcmp(mode, "int80-socket") == 0)
		report_raw("int80(socket(AF_INET))", int80(I386_SOCKET, AF_INET, SOCK_STREAM, 0));
	else if (strcmp(mode, "x32") == 0)
		report_raw("x32 getpid", syscall_insn(X32_BIT | X32_GETPID));
	else {
		fprintf(stderr,
		        "usage: abi32 int80-main|int80-thread|socketcall|int80-socket|x32\n");
		return 2;
	}
	probe_note("main thread", "survived");
	return 0;
}
