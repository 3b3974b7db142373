/* tailord's libuv event loop: signals (SIGTERM/SIGINT drain in-flight requests and stop;
 * SIGHUP reloads model and index), the session expiry timer, and the async wake-up that lets
 * any thread ask for a reload. Model loading runs on libuv's thread pool; the swap happens on
 * the loop thread. Not for: HTTP I/O (libmicrohttpd's own thread). */
#ifndef TAILORD_LOOP_H
#define TAILORD_LOOP_H

#include "app.h"

/* Loads the engine in the background, serves until a SIGTERM/SIGINT drain finishes, and
 * returns 0 (or 1 when the loop could not start). Sets app->request_reload. */
int loop_run(tailord *app);

#endif
