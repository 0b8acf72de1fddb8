/* log.h: one-line structured logs (logfmt) on stderr:
 *   ts=2026-11-21T23:59:00.123Z level=info event=http.request method=GET status=200
 * `event` names what happened; the rest are key=value pairs the caller formats. */
#ifndef AGENTHOST_LOG_H
#define AGENTHOST_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Parses "error", "warn", "info", "debug"; returns -1 for anything else. */
int log_level_parse(const char *name);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

/* fmt makes the key=value pairs after event; values with spaces must be quoted by the
 * caller (use log_quote for text from outside). */
void log_emit(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quotes s for a logfmt value into buf ("..." with \" and \n escaped, truncated). */
const char *log_quote(const char *s, char *buf, unsigned len);

#define log_error(ev, ...) log_emit(LOG_ERROR, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_emit(LOG_WARN, ev, __VA_ARGS__)
#define log_info(ev, ...) log_emit(LOG_INFO, ev, __VA_ARGS__)
#define log_debug(ev, ...) log_emit(LOG_DEBUG, ev, __VA_ARGS__)

#endif
