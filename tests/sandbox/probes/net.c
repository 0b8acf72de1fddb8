/* net ATTEMPT [ARGS]: opens one kind of socket or connects to one host endpoint and prints the
 * result, so a test can tell "the filter refused the family" from "the network namespace has
 * nothing there". Attempts: inet-tcp inet-udp inet-icmp inet-raw inet6-tcp inet6-udp inet6-raw
 * packet netlink vsock alg unix socketpair, connect-tcp PORT, connect-unix PATH,
 * connect-abstract NAME. */
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_alg.h>
#include <linux/netlink.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef ETH_P_ALL
#define ETH_P_ALL 0x0003
#endif

struct family_try {
	const char *name;
	const char *what;
	int domain, type, protocol;
};

static const struct family_try families[] = {
    {"inet-tcp", "socket(AF_INET,SOCK_STREAM)", AF_INET, SOCK_STREAM, 0},
    {"inet-udp", "socket(AF_INET,SOCK_DGRAM)", AF_INET, SOCK_DGRAM, 0},
    {"inet-icmp", "socket(AF_INET,SOCK_DGRAM,IPPROTO_ICMP)", AF_INET, SOCK_DGRAM, IPPROTO_ICMP},
    {"inet-raw", "socket(AF_INET,SOCK_RAW,IPPROTO_RAW)", AF_INET, SOCK_RAW, IPPROTO_RAW},
    {"inet6-tcp", "socket(AF_INET6,SOCK_STREAM)", AF_INET6, SOCK_STREAM, 0},
    {"inet6-udp", "socket(AF_INET6,SOCK_DGRAM)", AF_INET6, SOCK_DGRAM, 0},
    {"inet6-raw", "socket(AF_INET6,SOCK_RAW,IPPROTO_RAW)", AF_INET6, SOCK_RAW, IPPROTO_RAW},
    {"packet", "socket(AF_PACKET,SOCK_RAW)", AF_PACKET, SOCK_RAW, 0x0300 /* htons(ETH_P_ALL) */},
    {"netlink", "socket(AF_NETLINK,SOCK_RAW,NETLINK_ROUTE)", AF_NETLINK, SOCK_RAW, NETLINK_ROUTE},
    {"vsock", "socket(AF_VSOCK,SOCK_STREAM)", AF_VSOCK, SOCK_STREAM, 0},
    {"alg", "socket(AF_ALG,SOCK_SEQPACKET)", AF_ALG, SOCK_SEQPACKET, 0},
    {"unix", "socket(AF_UNIX,SOCK_STREAM)", AF_UNIX, SOCK_STREAM, 0},
};

/* After AF_ALG opens, binding a hash shows the crypto API is really reachable. */
static void alg_bind(int fd)
{
	struct sockaddr_alg sa;

	memset(&sa, 0, sizeof(sa));
	sa.salg_family = AF_ALG;
	strcpy((char *)sa.salg_type, "hash");
	strcpy((char *)sa.salg_name, "sha256");
	probe_report("bind(AF_ALG,hash,sha256)", bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
}

static int open_family(const struct family_try *f)
{
	int fd = (int)probe_report(f->what, socket(f->domain, f->type | SOCK_CLOEXEC, f->protocol));

	if (fd >= 0 && f->domain == AF_ALG)
		alg_bind(fd);
	return 0;
}

static int connect_tcp(const char *port)
{
	struct sockaddr_in sa;
	int fd = (int)probe_report("socket(AF_INET,SOCK_STREAM)",
	                           socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));

	if (fd < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)probe_parse_ll(port));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	probe_report("connect(127.0.0.1)", connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
	return 0;
}

/* Connects an AF_UNIX stream socket to PATH, or to the abstract NAME when abstract is set. */
static int connect_unix(const char *name, int abstract)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd = (int)probe_report("socket(AF_UNIX,SOCK_STREAM)",
	                           socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));

	if (fd < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(name) + 2 > sizeof(sa.sun_path)) {
		fprintf(stderr, "net: name too long\n");
		return 2;
	}
	strcpy(sa.sun_path + (abstract ? 1 : 0), name);
	len =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) + (abstract ? 1 : 0));
	probe_report(abstract ? "connect(abstract)" : "connect(path)",
	             connect(fd, (struct sockaddr *)&sa, len));
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	probe_init();
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		if (strcmp(mode, families[i].name) == 0)
			return open_family(&families[i]);
	if (strcmp(mode, "socketpair") == 0) {
		int sv[2];
		return (int)(probe_report("socketpair(AF_UNIX)",
		                          socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) <
		             0);
	}
	if (strcmp(mode, "connect-tcp") == 0 && argc == 3)
		return connect_tcp(argv[2]);
	if (strcmp(mode, "connect-unix") == 0 && argc == 3)
		return connect_unix(argv[2], 0);
	if (strcmp(mode, "connect-abstract") == 0 && argc == 3)
		return connect_unix(argv[2], 1);
	fprintf(stderr, "usage: net ATTEMPT [ARG] (see the file's first comment)\n");
	return 2;
}
