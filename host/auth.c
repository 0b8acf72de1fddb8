/* auth.c: token secrets, their hashes in the store, and the admin token file. */
#include "auth.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void new_secret(char secret[AUTH_SECRET_LEN + 1])
{
	random_id("aht_", 32, secret, AUTH_SECRET_LEN + 1);
}

/* Reads the admin token file; -ENOENT when there is none. */
static int read_admin_file(const char *path, char secret[AUTH_SECRET_LEN + 1], char *err,
                           size_t errlen)
{
	char buf[AUTH_SECRET_LEN + 8];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		if (errno != ENOENT)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -EIO;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) != AUTH_SECRET_LEN || strncmp(buf, "aht_", 4) != 0) {
		snprintf(err, errlen, "%s: not an agenthost token (delete it to make a new one)",
		         path);
		return -EINVAL;
	}
	memcpy(secret, buf, AUTH_SECRET_LEN + 1);
	return 0;
}

static int write_admin_file(const char *path, const char *secret, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = 0;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (dprintf(fd, "%s\n", secret) < 0 || fsync(fd) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -EIO;
	}
	close(fd);
	if (rc)
		unlink(path);
	return rc;
}

struct admin_search {
	unsigned char hash[STORE_TOKEN_HASH_LEN];
	bool found_same;
	char stale_id[AUTH_ID_LEN + 8];
};

static int find_admin_row(const struct store_token *t, void *ctx)
{
	struct admin_search *s = ctx;

	if (!t->admin)
		return 0;
	if (memcmp(t->hash, s->hash, STORE_TOKEN_HASH_LEN) == 0)
		s->found_same = true;
	else
		snprintf(s->stale_id, sizeof(s->stale_id), "%s", t->id);
	return 0;
}

int auth_init(struct store *st, const char *state_dir, char *err, size_t errlen)
{
	char *path = xasprintf("%s/admin.token", state_dir);
	char secret[AUTH_SECRET_LEN + 1];
	struct admin_search search = {0};
	int rc = read_admin_file(path, secret, err, errlen);

	if (rc == -ENOENT) {
		new_secret(secret);
		rc = write_admin_file(path, secret, err, errlen);
		if (rc == 0)
			log_info("auth.admin_token_created", "path=%s", path);
	}
	free(path);
	if (rc)
		return rc;

	sha256(secret, AUTH_SECRET_LEN, search.hash);
	if (store_token_list(st, find_admin_row, &search) < 0)
		goto store_failed;
	if (search.found_same)
		return 0;
	if (search.stale_id[0]) {
		if (store_token_delete(st, search.stale_id) < 0)
			goto store_failed;
		log_info("auth.admin_token_rotated", "old_id=%s", search.stale_id);
	}
	struct store_token row = {.name = "admin", .admin = true, .created_at = store_now_ms()};
	char id[AUTH_ID_LEN + 1];
	random_id("t_", 8, id, sizeof(id));
	row.id = id;
	memcpy(row.hash, search.hash, STORE_TOKEN_HASH_LEN);
	if (store_token_insert(st, &row) < 0)
		goto store_failed;
	return 0;

store_failed:
	snprintf(err, errlen, "state store: %s", store_errmsg(st));
	return -EIO;
}

const char *auth_bearer(const char *header)
{
	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return NULL;
	header += 7;
	while (*header == ' ')
		header++;
	return header;
}

/* Live tokens seen lately, by hash: a request then costs one SHA-256 and no store read.
 * Only the event loop thread authenticates, and only auth_forget removes tokens while the
 * daemon runs (revocation), so the cache cannot go stale. */
#define AUTH_CACHE_SLOTS 256

static struct {
	bool used;
	unsigned char hash[STORE_TOKEN_HASH_LEN];
	struct auth_identity who;
} cache[AUTH_CACHE_SLOTS];

int auth_check(struct store *st, const char *secret, struct auth_identity *who)
{
	unsigned char hash[STORE_TOKEN_HASH_LEN];
	struct store_token row = {0};
	int rc;

	if (!secret || strlen(secret) != AUTH_SECRET_LEN)
		return -EACCES;
	sha256(secret, AUTH_SECRET_LEN, hash);
	unsigned slot = hash[0] % AUTH_CACHE_SLOTS;
	if (cache[slot].used && memcmp(cache[slot].hash, hash, sizeof(hash)) == 0) {
		*who = cache[slot].who;
		return 0;
	}
	rc = store_token_find_by_hash(st, hash, &row);
	if (rc == -ENOENT)
		return -EACCES;
	if (rc < 0)
		return rc;
	snprintf(who->token_id, sizeof(who->token_id), "%s", row.id);
	who->admin = row.admin;
	store_token_clear(&row);
	cache[slot].used = true;
	memcpy(cache[slot].hash, hash, sizeof(hash));
	cache[slot].who = *who;
	return 0;
}

void auth_forget(const char *token_id)
{
	for (unsigned i = 0; i < AUTH_CACHE_SLOTS; i++)
		if (cache[i].used && strcmp(cache[i].who.token_id, token_id) == 0)
			cache[i].used = false;
}

int auth_token_create(struct store *st, const char *name, char *secret, struct store_token *row)
{
	char id[AUTH_ID_LEN + 1];
	int rc;

	new_secret(secret);
	random_id("t_", 8, id, sizeof(id));
	memset(row, 0, sizeof(*row));
	row->id = xstrdup(id);
	row->name = xstrdup(name);
	row->admin = false;
	row->created_at = store_now_ms();
	sha256(secret, AUTH_SECRET_LEN, row->hash);
	rc = store_token_insert(st, row);
	if (rc < 0)
		store_token_clear(row);
	return rc;
}
