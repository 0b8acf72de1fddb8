/* worker.h: blocking work (an install copies trees and runs a command) done on its own
 * thread, with its completion run back on the event loop thread, where it may touch lws
 * and the daemon's state. The loop is woken with lws_cancel_service(); the "worker"
 * protocol drains finished jobs in LWS_CALLBACK_EVENT_WAIT_CANCELLED. */
#ifndef AGENTHOST_WORKER_H
#define AGENTHOST_WORKER_H

struct lws_context;
struct lws_protocols;

typedef void (*worker_fn)(void *arg);

/* Runs work(arg) on a new thread, then done(arg) on the loop thread. arg is owned by the
 * caller's functions. Returns 0, or -errno if no thread could be started (then neither
 * function is called). */
int worker_submit(struct lws_context *lws, worker_fn work, worker_fn done, void *arg);

/* Waits for every running job to finish its work (at shutdown). */
void worker_wait_all(void);

const struct lws_protocols *worker_protocol(void);

#endif
