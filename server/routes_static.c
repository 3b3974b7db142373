/* Files: the demo shop page (GET /, /app.js, /style.css from web_dir; a fixed list, so no
 * path from the URL ever reaches the file system) and catalogue images (GET /images/{id}:
 * the path is looked up by id in the catalogue, never taken from the URL). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"

/* The media type from the file's first bytes. */
static const char *sniff_image_type(int fd) {
    unsigned char magic[12] = {0};
    ssize_t n = pread(fd, magic, sizeof magic, 0);
    if (n >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) return "image/jpeg";
    if (n >= 8 && !memcmp(magic, "\x89PNG\r\n\x1a\n", 8)) return "image/png";
    if (n >= 12 && !memcmp(magic, "RIFF", 4) && !memcmp(magic + 8, "WEBP", 4)) return "image/webp";
    return "application/octet-stream";
}

/* Answers with the regular file at path, or 404 (code) when it cannot be opened. */
static void respond_file(http_request *req, const char *path, const char *type, api_error code) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        http_respond_error(req, code, "not found");
        return;
    }
    http_respond_fd(req, type ? type : sniff_image_type(fd), fd, (size_t)st.st_size);
}

static void respond_web_file(http_request *req, tailord *app, const char *name, const char *type) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", app->cfg.web_dir, name);
    respond_file(req, path, type, API_NOT_FOUND);
}

static void get_index(http_request *req, void *ctx) {
    respond_web_file(req, ctx, "index.html", "text/html; charset=utf-8");
}

static void get_app_js(http_request *req, void *ctx) {
    respond_web_file(req, ctx, "app.js", "text/javascript; charset=utf-8");
}

static void get_style_css(http_request *req, void *ctx) {
    respond_web_file(req, ctx, "style.css", "text/css; charset=utf-8");
}

static void get_image(http_request *req, void *ctx) {
    tailord *app = ctx;
    int64_t id = parse_item_id(http_request_param(req));
    if (id < 0) {
        http_respond_error(req, API_BAD_REQUEST, "an item id is a non-negative integer");
        return;
    }
    engine *eng = engine_acquire(app->engines);
    char *path = eng ? search_service_image_path(eng->search, id) : NULL;
    engine_release(app->engines, eng);
    if (!eng)
        http_respond_error(req, API_NOT_READY, "the catalogue is not loaded yet");
    else if (!path)
        http_respond_error(req, API_ITEM_NOT_FOUND, "no item %lld", (long long)id);
    else
        respond_file(req, path, NULL, API_ITEM_NOT_FOUND);
    free(path);
}

const http_route static_routes[] = {
    {HTTP_GET, "/", get_index, 0},
    {HTTP_GET, "/app.js", get_app_js, 0},
    {HTTP_GET, "/style.css", get_style_css, 0},
    {HTTP_GET, "/images/{}", get_image, 0},
};
const int static_route_count = sizeof static_routes / sizeof static_routes[0];
