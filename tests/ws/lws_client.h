/* A WebSocket client built on libwebsockets, the way a C program (a bot, a
 * bridge) would use the gateway: one lws context serviced on the calling
 * thread. It drives one scripted session: auth, history, a command, and
 * waits for the command's effect. The raw client in ws_client.h covers
 * everything misbehaving; this one shows a standard stack interoperates. */
#ifndef WD_LWS_CLIENT_H
#define WD_LWS_CLIENT_H

#include <stdbool.h>

typedef struct {
    bool authed;       /* "auth success" came */
    bool history_seen; /* history contained history_text */
    bool effect_seen;  /* live output contained effect_text after the command */
    bool history_before_live;
    int status_events;
    int close_code; /* from the server's close frame, 0 if none */
} wd_lwsc_result;

/* Connects to ws://127.0.0.1:port/ws, authenticates with token, asks for
 * logs, waits for history_text in the history, sends command, waits for
 * effect_text, closes. Gives up after timeout_ms. */
bool wd_lwsc_session(int port, const char *token, const char *history_text, const char *command,
                     const char *effect_text, int timeout_ms, wd_lwsc_result *res);

#endif
