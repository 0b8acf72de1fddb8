/* ws.h: the session WebSocket transport (GET /v1/sessions/{id}/ws, agenthost.v1). */
#ifndef AGENTHOST_WS_H
#define AGENTHOST_WS_H

struct lws_protocols;

/* The lws protocol serving agenthost.v1 WebSockets. */
const struct lws_protocols *ws_protocol(void);

#endif
