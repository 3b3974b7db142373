/* SQLite-backed catalogue: schema, prepared statements and row <-> catalog_product mapping.
 * Not for: deciding what is a valid product (the parser checks input). */
#include "catalog_store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct catalog_store {
    sqlite3 *db;
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS products ("
    " id INTEGER PRIMARY KEY, sku TEXT NOT NULL, title TEXT NOT NULL,"
    " description TEXT NOT NULL, category TEXT NOT NULL, subcategory TEXT NOT NULL,"
    " image_path TEXT NOT NULL, attributes TEXT NOT NULL, embedding_version INTEGER NOT NULL);";

static const char COLUMNS[] = "id, sku, title, description, category, subcategory, image_path,"
                              " attributes, embedding_version";

static tl_status sqlite_failed(catalog_store *s, tl_error *err, const char *what) {
    return tl_fail(err, TL_ERR_IO, "catalogue %s: %s", what, sqlite3_errmsg(s->db));
}

static tl_status exec_sql(catalog_store *s, const char *sql, tl_error *err) {
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? TL_OK
                                                                   : sqlite_failed(s, err, sql);
}

tl_status catalog_store_open(catalog_store **out, const char *path, int flags, tl_error *err) {
    *out = NULL;
    catalog_store *s = calloc(1, sizeof *s);
    if (!s) return tl_fail(err, TL_ERR_NOMEM, "catalogue: out of memory");
    int read_only = flags & CATALOG_READ_ONLY;
    char *uri = sqlite3_mprintf("file:%s%s", path, read_only ? "?immutable=1" : "");
    int open_flags =
        SQLITE_OPEN_URI | SQLITE_OPEN_FULLMUTEX |
        (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = uri ? sqlite3_open_v2(uri, &s->db, open_flags, NULL) : SQLITE_NOMEM;
    sqlite3_free(uri);
    tl_status st = rc == SQLITE_OK ? TL_OK
                                   : tl_fail(err, TL_ERR_IO, "cannot open catalogue %s: %s", path,
                                             s->db ? sqlite3_errmsg(s->db) : "out of memory");
    if (!st && !read_only) st = exec_sql(s, "PRAGMA journal_mode=WAL;", err);
    if (!st && !read_only) st = exec_sql(s, SCHEMA, err);
    if (!st && read_only) st = exec_sql(s, "SELECT count(*) FROM products;", err);
    if (st) {
        catalog_store_close(s);
        return st;
    }
    sqlite3_busy_timeout(s->db, 5000);
    *out = s;
    return TL_OK;
}

void catalog_store_close(catalog_store *s) {
    if (!s) return;
    sqlite3_close(s->db);
    free(s);
}

void catalog_product_clear(catalog_product *p) {
    char **fields[] = {&p->sku,         &p->title,      &p->description, &p->category,
                       &p->subcategory, &p->image_path, &p->attributes};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) free(*fields[i]);
    *p = (catalog_product){0};
}

static const char *or_default(const char *s, const char *fallback) {
    return s ? s : fallback;
}

tl_status catalog_upsert(catalog_store *s, const catalog_product *p, tl_error *err) {
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO products (%s) VALUES (?,?,?,?,?,?,?,?,?);",
             COLUMNS);
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return sqlite_failed(s, err, "prepare");
    const char *texts[7] = {p->sku,
                            p->title,
                            p->description,
                            p->category,
                            p->subcategory,
                            p->image_path,
                            or_default(p->attributes, "{}")};
    sqlite3_bind_int64(stmt, 1, p->id);
    for (int i = 0; i < 7; i++) sqlite3_bind_text(stmt, 2 + i, or_default(texts[i], ""), -1, NULL);
    sqlite3_bind_int(stmt, 9, p->embedding_version);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? TL_OK : sqlite_failed(s, err, "upsert");
}

static char *column_text(sqlite3_stmt *stmt, int i) {
    const unsigned char *t = sqlite3_column_text(stmt, i);
    return strdup(t ? (const char *)t : "");
}

/* Copies the current row of stmt (selected with COLUMNS) into *p; returns 0 on NOMEM. */
static int read_row(sqlite3_stmt *stmt, catalog_product *p) {
    p->id = sqlite3_column_int64(stmt, 0);
    char **fields[] = {&p->sku,         &p->title,      &p->description, &p->category,
                       &p->subcategory, &p->image_path, &p->attributes};
    int ok = 1;
    for (int i = 0; i < 7; i++) ok &= (*fields[i] = column_text(stmt, 1 + i)) != NULL;
    p->embedding_version = sqlite3_column_int(stmt, 8);
    return ok;
}

tl_status catalog_get(catalog_store *s, int64_t id, catalog_product *out, tl_error *err) {
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM products WHERE id = ?;", COLUMNS);
    sqlite3_stmt *stmt;
    *out = (catalog_product){0};
    if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return sqlite_failed(s, err, "prepare");
    sqlite3_bind_int64(stmt, 1, id);
    int rc = sqlite3_step(stmt);
    tl_status st = TL_OK;
    if (rc == SQLITE_DONE)
        st = tl_fail(err, TL_ERR_NOT_FOUND, "no product with id %lld", (long long)id);
    else if (rc != SQLITE_ROW)
        st = sqlite_failed(s, err, "get");
    else if (!read_row(stmt, out))
        st = tl_fail(err, TL_ERR_NOMEM, "catalogue: out of memory");
    sqlite3_finalize(stmt);
    if (st) catalog_product_clear(out);
    return st;
}

tl_status catalog_delete(catalog_store *s, int64_t id, int *deleted, tl_error *err) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM products WHERE id = ?;", -1, &stmt, NULL) !=
        SQLITE_OK)
        return sqlite_failed(s, err, "prepare");
    sqlite3_bind_int64(stmt, 1, id);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return sqlite_failed(s, err, "delete");
    if (deleted) *deleted = sqlite3_changes(s->db) > 0;
    return TL_OK;
}

tl_status catalog_count(catalog_store *s, int64_t *count, tl_error *err) {
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM products;", -1, &stmt, NULL) != SQLITE_OK)
        return sqlite_failed(s, err, "prepare");
    int rc = sqlite3_step(stmt);
    *count = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? TL_OK : sqlite_failed(s, err, "count");
}

tl_status catalog_iterate(catalog_store *s, catalog_visit_fn visit, void *ctx, tl_error *err) {
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM products ORDER BY id;", COLUMNS);
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return sqlite_failed(s, err, "prepare");
    tl_status st = TL_OK;
    int rc, stop = 0;
    while (!st && !stop && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        catalog_product p = {0};
        if (!read_row(stmt, &p))
            st = tl_fail(err, TL_ERR_NOMEM, "catalogue: out of memory");
        else
            stop = visit(&p, ctx);
        catalog_product_clear(&p);
    }
    if (!st && !stop && rc != SQLITE_DONE) st = sqlite_failed(s, err, "iterate");
    sqlite3_finalize(stmt);
    return st;
}

tl_status catalog_begin(catalog_store *s, tl_error *err) {
    return exec_sql(s, "BEGIN;", err);
}

tl_status catalog_commit(catalog_store *s, tl_error *err) {
    return exec_sql(s, "COMMIT;", err);
}

tl_status catalog_store_seal(catalog_store *s, tl_error *err) {
    tl_status st = exec_sql(s, "PRAGMA wal_checkpoint(TRUNCATE);", err);
    if (!st) st = exec_sql(s, "PRAGMA journal_mode=DELETE;", err);
    return st;
}
