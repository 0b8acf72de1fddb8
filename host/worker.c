/* worker.c: one detached thread per job (jobs are rare: installs), a mutex-protected list
 * of finished jobs, and the loop-side drain. */
#include "worker.h"
#include "util.h"

#include <errno.h>
#include <libwebsockets.h>
#include <pthread.h>

struct job {
	struct lws_context *lws;
	worker_fn work, done;
	void *arg;
	struct job *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;
static struct job *finished; /* newest first */
static int running;

static void *job_thread(void *p)
{
	struct job *job = p;

	job->work(job->arg);
	pthread_mutex_lock(&lock);
	job->next = finished;
	finished = job;
	running--;
	pthread_cond_broadcast(&idle);
	pthread_mutex_unlock(&lock);
	lws_cancel_service(job->lws);
	return NULL;
}

int worker_submit(struct lws_context *lws, worker_fn work, worker_fn done, void *arg)
{
	struct job *job = xcalloc(1, sizeof(*job));
	pthread_attr_t attr;
	pthread_t tid;
	int rc;

	*job = (struct job){.lws = lws, .work = work, .done = done, .arg = arg};
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&lock);
	running++;
	pthread_mutex_unlock(&lock);
	rc = pthread_create(&tid, &attr, job_thread, job);
	pthread_attr_destroy(&attr);
	if (rc) {
		pthread_mutex_lock(&lock);
		running--;
		pthread_mutex_unlock(&lock);
		free(job);
		return -rc;
	}
	return 0;
}

void worker_wait_all(void)
{
	pthread_mutex_lock(&lock);
	while (running > 0)
		pthread_cond_wait(&idle, &lock);
	pthread_mutex_unlock(&lock);
}

/* Runs the completions of finished jobs, oldest first. */
static void drain(void)
{
	struct job *list, *rev = NULL;

	pthread_mutex_lock(&lock);
	list = finished;
	finished = NULL;
	pthread_mutex_unlock(&lock);
	while (list) {
		struct job *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct job *next = rev->next;
		rev->done(rev->arg);
		free(rev);
		rev = next;
	}
}

static int callback_worker(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
	(void)wsi, (void)user, (void)in, (void)len;
	if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED)
		drain();
	return 0;
}

static const struct lws_protocols protocol = {
    .name = "agenthost-worker",
    .callback = callback_worker,
};

const struct lws_protocols *worker_protocol(void)
{
	return &protocol;
}
