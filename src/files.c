/* files.c -- shared files: the upload and download endpoints, the
 * content-addressed store on disk and its rows in palaver.db
 * (files.h, docs/files.md).
 *
 * Threads: CivetWeb workers (the handlers), several at once; main opens
 * and closes. `mu` guards the SQLite connection and the libmagic handle
 * (neither is shared between threads otherwise); it is held for one
 * statement or one detection, never while reading from or writing to a
 * client. `pace_mu` guards the upload slots (who holds them) and the
 * shared read pace; it is held for a few arithmetic steps, never around
 * I/O. */
#include "palaver/files.h"

#include <civetweb.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <magic.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "palaver/accounts.h"
#include "palaver/api.h"
#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/limits.h"
#include "palaver/live.h"
#include "palaver/log.h"
#include "palaver/nickname.h"
#include "palaver/peer.h"
#include "palaver/proto.h"
#include "palaver/upload.h"
#include "palaver/xalloc.h"

#define PIECE 65536 /* bytes read from the client at a time */
#define DAY_MS 86400000ll
#define PATHLEN 4352 /* --data-dir (4096 bytes at most) and what follows it */
/* An attachment may be served while it is not in a message yet (the
 * uploader's own page shows it), or while its message is a message: not
 * once the message is deleted (a tombstone) or gone (retention). */
#define ALIVE                                                                                      \
    "(a.seq IS NULL OR EXISTS (SELECT 1 FROM messages m WHERE m.seq = a.seq AND "                  \
    "m.json ->> '$.type' = 'message'))"

struct pv_files {
    const struct pv_config *cfg;
    struct pv_accounts *accounts;
    struct pv_live *live;
    char dir[4200]; /* <data-dir>/files (PATHLEN less what follows it) */
    pthread_mutex_t mu;
    sqlite3 *db;
    magic_t mime, desc;
    /* Uploads in progress by address (--upload-slots-per-ip) and the
     * shared pace of reading them (--upload-rate, a token bucket of
     * bytes): both under pace_mu, taken per upload and per piece read. */
    pthread_mutex_t pace_mu;
    char (*holders)[48]; /* upload_slots addresses; "" = free */
    double tokens;
    uint64_t pace_ns;
};

/* Every answer below is the accounts API's JSON (pv_api_reply and
 * pv_api_error, api.h). Keep-alive is off in palaverd: a refusal before
 * the body is read ends the connection, and the body is never taken. */

static bool mkdirs(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST;
}

struct pv_files *pv_files_open(const struct pv_config *cfg, struct pv_accounts *accounts,
                               struct pv_live *live, char *err, size_t errsz)
{
    if (!cfg->data_dir[0]) {
        snprintf(err, errsz, "files need a data directory (--data-dir)");
        return NULL;
    }
    struct pv_files *f = pv_xcalloc(1, sizeof(*f));
    f->cfg = cfg;
    f->accounts = accounts;
    f->live = live;
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->pace_mu, NULL);
    f->holders = pv_xcalloc(cfg->upload_slots, sizeof(*f->holders));
    f->pace_ns = pv_mono_ns();
    char tmp[PATHLEN], db[PATHLEN];
    snprintf(f->dir, sizeof(f->dir), "%s/files", cfg->data_dir);
    snprintf(tmp, sizeof(tmp), "%s/tmp", f->dir);
    snprintf(db, sizeof(db), "%s/palaver.db", cfg->data_dir);
    if (!mkdirs(f->dir) || !mkdirs(tmp)) {
        snprintf(err, errsz, "cannot make %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (sqlite3_open_v2(db, &f->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errsz, "cannot open %s: %s", db, f->db ? sqlite3_errmsg(f->db) : "no memory");
        goto fail;
    }
    sqlite3_busy_timeout(f->db, 5000);
    sqlite3_exec(f->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    /* libmagic: the compiled database from Debian's libmagic-mgc; no
     * compressed files looked into, no external programs. */
    f->mime = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS | MAGIC_ERROR);
    f->desc = magic_open(MAGIC_NO_CHECK_COMPRESS | MAGIC_ERROR);
    if (!f->mime || !f->desc || magic_load(f->mime, NULL) != 0 || magic_load(f->desc, NULL) != 0) {
        snprintf(err, errsz, "cannot load libmagic's database: %s",
                 f->mime ? magic_error(f->mime) : strerror(errno));
        goto fail;
    }
    /* Temporary files of uploads a crash cut short: never anyone's. */
    DIR *d = opendir(tmp);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, "up-", 3) == 0 && unlinkat(dirfd(d), e->d_name, 0) == 0)
            pv_info("files: removed %s/%s, an upload cut short before a restart", tmp, e->d_name);
    }
    if (d)
        closedir(d);
    return f;
fail:
    pv_files_close(f);
    return NULL;
}

void pv_files_close(struct pv_files *f)
{
    if (!f)
        return;
    if (f->mime)
        magic_close(f->mime);
    if (f->desc)
        magic_close(f->desc);
    sqlite3_close(f->db);
    pthread_mutex_destroy(&f->mu);
    pthread_mutex_destroy(&f->pace_mu);
    free(f->holders);
    free(f);
}

/* ---- who may ---- */

struct room {
    int64_t id;
    bool archived, announcement;
};

/* The room named (NULL: the lobby) as stored; false if there is none. */
static bool find_room(struct pv_files *f, const char *name, struct room *out)
{
    if (!name || strcmp(name, PV_LOBBY) == 0) {
        *out = (struct room){.id = 1};
        return true;
    }
    char key[PV_NAME_KEY_MAX], prepared[PV_NAME_MAX_BYTES + 1];
    const char *why;
    size_t len = strlen(name);
    if (len > PV_ROOM_NAME_MAX_BYTES)
        return false;
    if (strncmp(name, "dm:", 3) == 0)
        snprintf(key, sizeof(key), "%s", name);
    else if (!pv_nickname_prepare(name, len, prepared, sizeof(prepared), &why) ||
             !pv_nickname_key(prepared, key))
        return false;
    sqlite3_stmt *st;
    bool found = false;
    pthread_mutex_lock(&f->mu);
    if (sqlite3_prepare_v2(f->db,
                           "SELECT id, archived IS NOT NULL, kind = 'announcement' FROM rooms "
                           "WHERE name_key = ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *out = (struct room){.id = sqlite3_column_int64(st, 0),
                                 .archived = sqlite3_column_int(st, 1) != 0,
                                 .announcement = sqlite3_column_int(st, 2) != 0};
            found = true;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&f->mu);
    return found;
}

/* Whether `account` (0: a guest) may see room `room`'s files: the lobby
 * is everyone's (in members-only mode, every account's); any other room
 * its members'. */
static bool may_see(struct pv_files *f, int64_t room, int64_t account)
{
    if (room == 1)
        return account > 0 || !atomic_load_explicit(&f->live->members_only, memory_order_relaxed);
    if (account <= 0)
        return false;
    sqlite3_stmt *st;
    bool ok = false;
    pthread_mutex_lock(&f->mu);
    if (sqlite3_prepare_v2(f->db, "SELECT 1 FROM room_members WHERE room_id = ?1 AND user_id = ?2",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, room);
        sqlite3_bind_int64(st, 2, account);
        ok = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&f->mu);
    return ok;
}

/* One integer from a query of one row, or `dflt`. */
static int64_t scalar(struct pv_files *f, const char *sql, int64_t a, int64_t b, int64_t dflt)
{
    sqlite3_stmt *st;
    int64_t v = dflt;
    pthread_mutex_lock(&f->mu);
    if (sqlite3_prepare_v2(f->db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, a);
        sqlite3_bind_int64(st, 2, b);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&f->mu);
    return v;
}

/* ---- upload ---- */

/* The query parameter `key` of the request, decoded; false if absent. */
static bool param(const struct mg_request_info *ri, const char *key, char *out, size_t n)
{
    return ri->query_string &&
           mg_get_var(ri->query_string, strlen(ri->query_string), key, out, n) >= 0;
}

static void new_id(char id[PV_FILE_ID_CHARS + 1])
{
    unsigned char raw[16];
    char b64[sodium_base64_ENCODED_LEN(16, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    randombytes_buf(raw, sizeof(raw));
    /* (libsodium fills its whole output buffer: encode into one of its
     * own size, then copy the 22 characters.) */
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    memcpy(id, b64, PV_FILE_ID_CHARS);
    id[PV_FILE_ID_CHARS] = '\0';
}

struct upload {
    char tmp[PATHLEN], path[PATHLEN], hash[65], id[PV_FILE_ID_CHARS + 1];
    char name[PV_FILE_NAME_MAX + 1], room_name[PV_ROOM_NAME_MAX_BYTES + 1];
    char mime[128], desc[256];
    char preview_of[PV_FILE_ID_CHARS + 1]; /* a preview: the original's id; "" otherwise */
    long width, height;
    uint64_t size;
};

#define PACE_BURST 1048576.0 /* bytes read at once before the pace applies */

/* Waits until `n` more bytes may be read under --upload-rate, shared by
 * every upload: uploads come in at most that fast together, however many
 * clients push, and leave the chat its CPU (docs/files.md, measured). */
static void pace(struct pv_files *f, size_t n)
{
    double rate = (double)f->cfg->upload_rate;
    if (rate <= 0)
        return;
    pthread_mutex_lock(&f->pace_mu);
    uint64_t now = pv_mono_ns();
    f->tokens += (double)(now - f->pace_ns) / 1e9 * rate;
    if (f->tokens > PACE_BURST)
        f->tokens = PACE_BURST;
    f->pace_ns = now;
    f->tokens -= (double)n;
    double wait_s = f->tokens < 0 ? -f->tokens / rate : 0;
    pthread_mutex_unlock(&f->pace_mu);
    if (wait_s > 0) {
        struct timespec ts = {(time_t)wait_s, (long)((wait_s - (double)(time_t)wait_s) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* Takes one of the upload slots of `addr`'s share (--upload-slots-per-ip
 * of --upload-slots); false if the address holds its share or every slot
 * is taken. */
static bool hold_slot(struct pv_files *f, const char *addr, bool *all_taken, unsigned *taken)
{
    unsigned mine = 0, free_at = UINT32_MAX, held = 0;
    pthread_mutex_lock(&f->pace_mu);
    for (unsigned i = 0; i < f->cfg->upload_slots; i++) {
        if (!f->holders[i][0]) {
            if (free_at == UINT32_MAX)
                free_at = i;
        } else {
            held++;
            mine += strcmp(f->holders[i], addr) == 0;
        }
    }
    bool ok = free_at != UINT32_MAX && mine < f->cfg->upload_slots_per_ip;
    if (ok) {
        snprintf(f->holders[free_at], sizeof(f->holders[free_at]), "%s", addr);
        held++;
    }
    *all_taken = free_at == UINT32_MAX;
    *taken = held;
    pthread_mutex_unlock(&f->pace_mu);
    return ok;
}

static void release_slot(struct pv_files *f, const char *addr)
{
    pthread_mutex_lock(&f->pace_mu);
    for (unsigned i = 0; i < f->cfg->upload_slots; i++)
        if (strcmp(f->holders[i], addr) == 0) {
            f->holders[i][0] = '\0';
            break;
        }
    pthread_mutex_unlock(&f->pace_mu);
}

/* A failed write or fsync as the answer's status, code and reason.
 * EFBIG (the file size limit: systemd's LimitFSIZE=) is, for this
 * upload, the same as a full disk. */
static int storage_error(int err, const char **code, const char **why)
{
    bool full = err == ENOSPC || err == EDQUOT || err == EFBIG;
    *code = full ? "disk-full" : "storage-failed";
    *why = full ? "the server's disk is full" : "the server cannot write files now";
    return full ? 507 : 500;
}

/* Reads the body into a temporary file, hashing it. 0, or an HTTP status
 * (the temporary file removed) with *why. */
static int receive(struct pv_files *f, struct mg_connection *conn, struct upload *u,
                   const char **code, const char **why)
{
    snprintf(u->tmp, sizeof(u->tmp), "%s/tmp/up-XXXXXX", f->dir);
    int fd = mkstemp(u->tmp);
    if (fd < 0) {
        *code = "storage-failed";
        *why = "the server cannot write files now";
        return 500;
    }
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    if (!sha || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(sha);
        close(fd);
        unlink(u->tmp);
        *code = "storage-failed";
        *why = "the server cannot write files now";
        return 500;
    }
    unsigned char *buf = pv_xmalloc(PIECE), head[8192];
    size_t head_len = 0;
    uint64_t got = 0;
    int status = 0;
    while (got < u->size) {
        size_t want = u->size - got < PIECE ? (size_t)(u->size - got) : PIECE;
        pace(f, want);
        int r = mg_read(conn, buf, want);
        if (r <= 0) {
            *code = "truncated";
            *why = "the upload ended before its Content-Length";
            status = 400;
            break;
        }
        EVP_DigestUpdate(sha, buf, (size_t)r);
        if (head_len < sizeof(head)) {
            size_t k = sizeof(head) - head_len < (size_t)r ? sizeof(head) - head_len : (size_t)r;
            memcpy(head + head_len, buf, k);
            head_len += k;
        }
        for (ssize_t off = 0, w; off < r; off += w) {
            w = write(fd, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR) {
                w = 0;
                continue;
            }
            if (w <= 0) {
                status = storage_error(errno, code, why);
                break;
            }
        }
        if (status)
            break;
        got += (uint64_t)r;
    }
    free(buf);
    if (!status && fsync(fd) != 0)
        status = storage_error(errno, code, why);
    close(fd);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    if (!status)
        EVP_DigestFinal_ex(sha, digest, &dlen);
    EVP_MD_CTX_free(sha);
    if (status) {
        unlink(u->tmp);
        return status;
    }
    sodium_bin2hex(u->hash, sizeof(u->hash), digest, 32);
    /* The type from the bytes (the first 8 KiB: libmagic's own default
     * look-ahead is larger, but every type we serve inline is named by
     * its first bytes), never from the client. */
    pthread_mutex_lock(&f->mu);
    const char *m = magic_buffer(f->mime, head, head_len);
    const char *d = magic_buffer(f->desc, head, head_len);
    snprintf(u->mime, sizeof(u->mime), "%s", m ? m : "application/octet-stream");
    snprintf(u->desc, sizeof(u->desc), "%s", d ? d : "");
    pthread_mutex_unlock(&f->mu);
    if (strncmp(u->mime, "image/", 6) == 0)
        pv_file_dimensions(u->desc, &u->width, &u->height);
    return 0;
}

/* Moves u's temporary file into place, <files>/<2 hex>/<hash>, the
 * directory synced. Called with mu held (with record(): the sweep, which
 * removes content nothing refers to, holds mu too, so it never removes
 * what an upload is putting in place). False: the temporary file is gone. */
static bool place(struct pv_files *f, struct upload *u)
{
    char sub[PATHLEN];
    snprintf(sub, sizeof(sub), "%s/%.2s", f->dir, u->hash);
    snprintf(u->path, sizeof(u->path), "%s/%.2s/%s", f->dir, u->hash, u->hash);
    if (!mkdirs(sub) || rename(u->tmp, u->path) != 0) {
        unlink(u->tmp);
        return false;
    }
    int dfd = open(sub, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return true;
}

/* The content's row (if new) and the attachment's, in one transaction.
 * Called with mu held, after place(). */
static bool record(struct pv_files *f, const struct upload *u, int64_t room, int64_t account,
                   const char *addr)
{
    int64_t now = pv_now_ms();
    bool ok = false;
    sqlite3_stmt *a = NULL, *b = NULL;
    if (sqlite3_exec(f->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(f->db,
                           "INSERT OR IGNORE INTO files (hash, size, mime, width, height, created) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &a, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(f->db,
                           "INSERT INTO attachments (id, hash, user_id, room_id, name, size, "
                           "created, addr, preview_of) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                           -1, &b, NULL) == SQLITE_OK) {
        sqlite3_bind_text(a, 1, u->hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(a, 2, (sqlite3_int64)u->size);
        sqlite3_bind_text(a, 3, u->mime, -1, SQLITE_STATIC);
        if (u->width)
            sqlite3_bind_int64(a, 4, u->width);
        if (u->height)
            sqlite3_bind_int64(a, 5, u->height);
        sqlite3_bind_int64(a, 6, now);
        sqlite3_bind_text(b, 1, u->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(b, 2, u->hash, -1, SQLITE_STATIC);
        if (account > 0)
            sqlite3_bind_int64(b, 3, account);
        sqlite3_bind_int64(b, 4, room);
        sqlite3_bind_text(b, 5, u->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(b, 6, (sqlite3_int64)u->size);
        sqlite3_bind_int64(b, 7, now);
        sqlite3_bind_text(b, 8, addr, -1, SQLITE_STATIC);
        if (u->preview_of[0])
            sqlite3_bind_text(b, 9, u->preview_of, -1, SQLITE_STATIC);
        ok = sqlite3_step(a) == SQLITE_DONE && sqlite3_step(b) == SQLITE_DONE;
    }
    sqlite3_finalize(a);
    sqlite3_finalize(b);
    sqlite3_exec(f->db, ok ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    return ok;
}

/* Whether the attachment row in `st` (its user_id in column `user_col`,
 * its addr in `addr_col`) is the uploader's own: a signed-in person's by
 * account, a guest's (where --guest-uploads is on) by address. */
static bool uploader_is(sqlite3_stmt *st, int user_col, int addr_col, int64_t account,
                        const char *addr)
{
    if (account > 0)
        return sqlite3_column_int64(st, user_col) == account;
    const unsigned char *a = sqlite3_column_text(st, addr_col);
    return sqlite3_column_type(st, user_col) == SQLITE_NULL && a &&
           strcmp((const char *)a, addr) == 0;
}

/* Why an upload may not be a preview of `orig` (NULL: it may): the
 * original must be the uploader's (an account's, or a guest's from the
 * same address), in `room`, not a preview itself, not yet in a message,
 * with fewer than PV_PREVIEWS previews. */
static const char *preview_refused(struct pv_files *f, const char *orig, int64_t room,
                                   int64_t account, const char *addr)
{
    if (!pv_file_id_ok(orig, strlen(orig)))
        return "\"preview\" must be the id of your upload";
    const char *why = "\"preview\" must be the id of your upload";
    sqlite3_stmt *st;
    pthread_mutex_lock(&f->mu);
    if (sqlite3_prepare_v2(
            f->db,
            "SELECT user_id, room_id, addr, seq IS NOT NULL, preview_of IS NOT NULL, "
            "(SELECT COUNT(*) FROM attachments p WHERE p.preview_of = ?1) "
            "FROM attachments WHERE id = ?1",
            -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, orig, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            bool mine = uploader_is(st, 0, 2, account, addr);
            if (!mine || sqlite3_column_int64(st, 1) != room)
                why = "\"preview\" must be the id of your upload in this room";
            else if (sqlite3_column_int(st, 3))
                why = "that file is in a message already: its previews are fixed";
            else if (sqlite3_column_int(st, 4))
                why = "a preview has no previews";
            else if (sqlite3_column_int(st, 5) >= PV_PREVIEWS)
                why = "that file has its previews already";
            else
                why = NULL;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&f->mu);
    return why;
}

static int on_upload(struct mg_connection *conn, void *ud)
{
    struct pv_files *f = ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct pv_peer who;
    char peer[160];
    (void)pv_request_peer(conn, &f->cfg->trusted, &who);
    pv_peer_text(conn, &who, peer, sizeof(peer));
    if (strcmp(ri->request_method, "POST") != 0)
        return pv_api_error(conn, 405, "Method Not Allowed", "bad-method", "use POST",
                            "Allow: POST\r\n");
    /* A page of another site cannot make a signed-in browser upload. */
    if (!pv_origin_allowed(mg_get_header(conn, "Origin"), who.https, mg_get_header(conn, "Host"),
                           atomic_load_explicit(&f->live->origins, memory_order_acquire))) {
        pv_warn("upload refused from %s: cross-site Origin; answered 403", peer);
        return pv_api_error(conn, 403, "Forbidden", "bad-origin",
                            "cross-site request refused: this page's origin is not allowed", NULL);
    }
    struct pv_account acc = {0};
    int s = pv_api_session(f->accounts, conn, &acc);
    if (s < 0)
        return pv_api_error(conn, 401, "Unauthorized", "signed-out",
                            "this session has ended: sign in", NULL);
    bool guest = s == 0;
    if (ri->content_length < 0)
        return pv_api_error(conn, 411, "Length Required", "bad-request",
                            "Content-Length is required (chunked uploads are not taken)", NULL);
    if (f->cfg->max_upload == 0 || (uint64_t)ri->content_length > f->cfg->max_upload) {
        char why[160];
        snprintf(why, sizeof(why), "the file is larger than the server takes (%zu bytes)",
                 f->cfg->max_upload);
        pv_info("upload refused from %s: %lld bytes over --max-upload %zu; answered 413 before "
                "reading it",
                peer, (long long)ri->content_length, f->cfg->max_upload);
        return pv_api_error(conn, 413, "Payload Too Large", "too-large", why,
                            "Connection: close\r\n");
    }
    struct upload u = {.size = (uint64_t)ri->content_length};
    char raw_name[1024] = "";
    if (!param(ri, "room", u.room_name, sizeof(u.room_name)))
        snprintf(u.room_name, sizeof(u.room_name), "%s", PV_LOBBY);
    param(ri, "name", raw_name, sizeof(raw_name));
    pv_file_name(raw_name, strlen(raw_name), u.name);
    struct room room;
    /* The same answer for a room that does not exist and one the person
     * is not in (rooms.md: private rooms' names do not leak). */
    if (!find_room(f, u.room_name, &room) || !may_see(f, room.id, guest ? 0 : acc.id))
        return pv_api_error(conn, 403, "Forbidden", "not-a-member", "you are not in that room",
                            "Connection: close\r\n");
    if (guest && (room.id != 1 || strcmp(f->cfg->guest_uploads, "on") != 0))
        return pv_api_error(conn, 403, "Forbidden", "forbidden",
                            "sign in to share files (guests may not, on this server)",
                            "Connection: close\r\n");
    if (room.archived || (room.announcement && pv_role_rank(acc.role) < 2) ||
        (!guest && acc.muted_until > pv_now_ms()))
        return pv_api_error(conn, 403, "Forbidden", "forbidden",
                            "you may not post in that room now", "Connection: close\r\n");
    /* A preview (docs/files.md): of one's own original, in the same room,
     * not yet in a message, at most PV_PREVIEWS of it. */
    char prev[64] = "";
    if (param(ri, "preview", prev, sizeof(prev))) {
        const char *bad = preview_refused(f, prev, room.id, guest ? 0 : acc.id, who.addr);
        if (bad)
            return pv_api_error(conn, 409, "Conflict", "bad-preview", bad, "Connection: close\r\n");
        memcpy(u.preview_of, prev, PV_FILE_ID_CHARS); /* an id's shape: checked above */
        u.preview_of[PV_FILE_ID_CHARS] = '\0';
    }
    /* Quotas, before a byte is read: the person's day, the store, the disk. */
    int64_t since = pv_now_ms() - DAY_MS;
    int64_t today = guest ? 0
                          : scalar(f,
                                   "SELECT COALESCE(SUM(size), 0) FROM attachments WHERE "
                                   "user_id = ?1 AND created > ?2",
                                   acc.id, since, 0);
    if ((uint64_t)today + u.size > f->cfg->upload_quota_day)
        return pv_api_error(conn, 507, "Insufficient Storage", "quota",
                            "you have shared as much as this server takes in a day; try tomorrow",
                            "Connection: close\r\n");
    int64_t stored = scalar(f, "SELECT COALESCE(SUM(size), 0) FROM files", 0, 0, 0);
    struct statvfs vfs;
    uint64_t avail = statvfs(f->dir, &vfs) == 0 ? (uint64_t)vfs.f_bavail * vfs.f_frsize : 0;
    if ((uint64_t)stored + u.size > f->cfg->files_max_bytes ||
        avail < u.size + f->cfg->files_reserve) {
        pv_warn("upload refused from %s: %llu bytes do not fit (files %lld of %zu bytes, disk "
                "%llu free, %zu kept free); answered 507",
                peer, (unsigned long long)u.size, (long long)stored, f->cfg->files_max_bytes,
                (unsigned long long)avail, f->cfg->files_reserve);
        return pv_api_error(conn, 507, "Insufficient Storage", "storage-full",
                            "the server has no room for more files now", "Connection: close\r\n");
    }
    bool all_taken;
    unsigned taken;
    if (!hold_slot(f, who.addr, &all_taken, &taken)) {
        pv_info("upload refused from %s: %s; answered 503", peer,
                all_taken ? "every upload slot is taken (--upload-slots)"
                          : "its address has its share of uploads in progress "
                            "(--upload-slots-per-ip)");
        return pv_api_error(conn, 503, "Service Unavailable", "busy",
                            all_taken ? "too many uploads at once: try again in a few seconds"
                                      : "you have uploads in progress: wait for one to finish",
                            "Retry-After: 5\r\nConnection: close\r\n");
    }
    pv_info("upload from %s: receiving \"%s\" (%llu bytes) into room %lld, %u of %u upload slots "
            "taken",
            peer, u.name, (unsigned long long)u.size, (long long)room.id, taken,
            f->cfg->upload_slots);
    const char *code = NULL, *why = NULL;
    int st = receive(f, conn, &u, &code, &why);
    release_slot(f, who.addr);
    /* A preview is what the page drew on a canvas: a raster image the
     * browser encoded, no larger than PV_PREVIEW_MAX a side (libmagic's
     * header reading: palaverd decodes no image). */
    if (!st && u.preview_of[0] &&
        ((strcmp(u.mime, "image/webp") != 0 && strcmp(u.mime, "image/jpeg") != 0 &&
          strcmp(u.mime, "image/png") != 0) ||
         u.width <= 0 || u.height <= 0 || u.width > PV_PREVIEW_MAX || u.height > PV_PREVIEW_MAX)) {
        unlink(u.tmp);
        pv_warn("upload from %s: preview of %s refused: %s %ldx%ld is not a WebP, JPEG or PNG of "
                "at most %d px a side; answered 415",
                peer, u.preview_of, u.mime, u.width, u.height, PV_PREVIEW_MAX);
        return pv_api_error(conn, 415, "Unsupported Media Type", "bad-preview",
                            "a preview must be a WebP, JPEG or PNG image of at most 1280 px a side",
                            "Connection: close\r\n");
    }
    if (!st) {
        new_id(u.id);
        pthread_mutex_lock(&f->mu);
        if (!place(f, &u)) {
            st = 500;
            code = "storage-failed";
            why = "the server cannot write files now";
        } else if (!record(f, &u, room.id, guest ? 0 : acc.id, who.addr)) {
            pv_err("upload from %s: stored %s but could not record it: %s", peer, u.hash,
                   sqlite3_errmsg(f->db));
            st = 500;
            code = "storage-failed";
            why = "the server cannot record files now";
        }
        pthread_mutex_unlock(&f->mu);
    }
    if (st) {
        pv_warn("upload from %s failed: %s (%llu bytes announced); nothing kept", peer, why,
                (unsigned long long)u.size);
        return pv_api_error(conn, st,
                            st == 400   ? "Bad Request"
                            : st == 507 ? "Insufficient Storage"
                                        : "Internal Server Error",
                            code, why, "Connection: close\r\n");
    }
    bool inl = pv_file_inline(u.mime);
    pv_info("upload from %s: %s \"%s\" %llu bytes %s into room %lld as %s", peer,
            guest ? "a guest" : acc.name, u.name, (unsigned long long)u.size, u.mime,
            (long long)room.id, u.id);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:I, s:s, s:b, s:s}", "id", u.id, "hash", u.hash, "name", u.name,
                  "size", (json_int_t)u.size, "type", inl ? u.mime : "application/octet-stream",
                  "inline", inl, "room", u.room_name);
    if (u.width)
        json_object_set_new(o, "width", json_integer(u.width));
    if (u.height)
        json_object_set_new(o, "height", json_integer(u.height));
    json_object_set_new(o, "detected", json_string(u.mime));
    if (u.preview_of[0])
        json_object_set_new(o, "previewOf", json_string(u.preview_of));
    char loc[64];
    snprintf(loc, sizeof(loc), "Location: /files/%s\r\n", u.id);
    return pv_api_reply(conn, 201, "Created", loc, o);
}

/* ---- download ---- */

static int on_download(struct mg_connection *conn, void *ud)
{
    struct pv_files *f = ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (strcmp(ri->request_method, "GET") != 0 && strcmp(ri->request_method, "HEAD") != 0)
        return pv_api_error(conn, 405, "Method Not Allowed", "bad-method", "use GET",
                            "Allow: GET, HEAD\r\n");
    const char *id = ri->local_uri + strlen("/files/");
    if (!pv_file_id_ok(id, strlen(id)))
        return pv_api_error(conn, 404, "Not Found", "no-file", "no such file", NULL);
    char hash[65] = "", name[PV_FILE_NAME_MAX + 1] = "", mime[128] = "";
    int64_t room = 0, size = 0;
    bool found = false;
    sqlite3_stmt *st;
    pthread_mutex_lock(&f->mu);
    if (sqlite3_prepare_v2(f->db,
                           "SELECT a.hash, a.room_id, a.name, f.size, f.mime FROM attachments a "
                           "JOIN files f ON f.hash = a.hash WHERE a.id = ?1 AND " ALIVE,
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(hash, sizeof(hash), "%s", (const char *)sqlite3_column_text(st, 0));
            room = sqlite3_column_int64(st, 1);
            snprintf(name, sizeof(name), "%s", (const char *)sqlite3_column_text(st, 2));
            size = sqlite3_column_int64(st, 3);
            snprintf(mime, sizeof(mime), "%s", (const char *)sqlite3_column_text(st, 4));
            found = true;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&f->mu);
    struct pv_account acc = {0};
    int s = found ? pv_api_session(f->accounts, conn, &acc) : 0;
    /* Not there and not yours look the same: a guessed id learns nothing. */
    if (!found || s < 0 || !may_see(f, room, s > 0 ? acc.id : 0) || strlen(hash) != 64 ||
        strspn(hash, "0123456789abcdef") != 64)
        return pv_api_error(conn, 404, "Not Found", "no-file", "no such file", NULL);
    char path[PATHLEN];
    snprintf(path, sizeof(path), "%s/%.2s/%s", f->dir, hash, hash);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pv_api_error(conn, 404, "Not Found", "no-file", "no such file", NULL);
    bool inl = pv_file_inline(mime);
    char disp[PV_FILE_DISPOSITION_MAX];
    pv_file_disposition(name, inl, disp, sizeof(disp));
    uint64_t from = 0, to = size > 0 ? (uint64_t)size - 1 : 0;
    int r = pv_file_range(mg_get_header(conn, "Range"), (uint64_t)size, &from, &to);
    const char *etag_match = mg_get_header(conn, "If-None-Match");
    char etag[70];
    snprintf(etag, sizeof(etag), "\"%s\"", hash);
    int status = 200;
    if (etag_match && strstr(etag_match, hash))
        status = 304;
    else if (r < 0)
        status = 416;
    else if (r > 0)
        status = 206;
    uint64_t len = status == 200 ? (uint64_t)size : status == 206 ? to - from + 1 : 0;
    char range_hdr[96] = "";
    if (status == 206)
        snprintf(range_hdr, sizeof(range_hdr), "Content-Range: bytes %llu-%llu/%lld\r\n",
                 (unsigned long long)from, (unsigned long long)to, (long long)size);
    else if (status == 416)
        snprintf(range_hdr, sizeof(range_hdr), "Content-Range: bytes */%lld\r\n", (long long)size);
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %llu\r\n"
              "Content-Disposition: %s\r\nX-Content-Type-Options: nosniff\r\n"
              "Content-Security-Policy: sandbox; default-src 'none'\r\n"
              "Cross-Origin-Resource-Policy: same-origin\r\n"
              "Cache-Control: private, max-age=31536000, immutable\r\nETag: %s\r\n"
              "Accept-Ranges: bytes\r\n%s\r\n",
              status,
              status == 200   ? "OK"
              : status == 206 ? "Partial Content"
              : status == 304 ? "Not Modified"
                              : "Range Not Satisfiable",
              inl ? mime : "application/octet-stream", (unsigned long long)len, disp, etag,
              range_hdr);
    if (strcmp(ri->request_method, "GET") == 0 && len > 0) {
        char *buf = pv_xmalloc(PIECE);
        for (uint64_t off = from, left = len; left > 0;) {
            ssize_t n = pread(fd, buf, left < PIECE ? (size_t)left : PIECE, (off_t)off);
            if (n <= 0 || mg_write(conn, buf, (size_t)n) <= 0)
                break;
            off += (uint64_t)n;
            left -= (uint64_t)n;
        }
        free(buf);
    }
    close(fd);
    return status;
}

/* ---- files in messages ---- */

/* The description of attachment `id` as a message carries it (files.h),
 * or NULL with *why if it may not be attached by this person to a
 * message of `room`. Called with mu held. */
static json_t *describe(struct pv_files *f, const char *id, int64_t room, int64_t account,
                        const char *addr, const char **code, const char **why)
{
    sqlite3_stmt *st, *pv;
    json_t *o = NULL;
    *code = "bad-files";
    *why = "no such file: upload it first";
    if (sqlite3_prepare_v2(f->db,
                           "SELECT a.user_id, a.room_id, a.addr, a.seq IS NOT NULL, "
                           "a.preview_of IS NOT NULL, a.name, f.size, f.mime, f.width, f.height "
                           "FROM attachments a JOIN files f ON f.hash = a.hash WHERE a.id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        bool mine = uploader_is(st, 0, 2, account, addr);
        /* Someone else's upload looks like one that does not exist. */
        if (!mine || sqlite3_column_int(st, 4))
            ;
        else if (sqlite3_column_int64(st, 1) != room)
            *why = "that file was shared into another room: upload it again here";
        else if (sqlite3_column_int(st, 3))
            *why = "that file is in a message already: upload it again";
        else {
            const char *mime = (const char *)sqlite3_column_text(st, 7);
            bool inl = pv_file_inline(mime);
            o = json_pack("{s:s, s:s, s:I, s:s, s:b}", "id", id, "name",
                          (const char *)sqlite3_column_text(st, 5), "size",
                          (json_int_t)sqlite3_column_int64(st, 6), "type",
                          inl ? mime : "application/octet-stream", "inline", inl);
            if (sqlite3_column_type(st, 8) == SQLITE_INTEGER)
                json_object_set_new(o, "width", json_integer(sqlite3_column_int64(st, 8)));
            if (sqlite3_column_type(st, 9) == SQLITE_INTEGER)
                json_object_set_new(o, "height", json_integer(sqlite3_column_int64(st, 9)));
        }
    }
    sqlite3_finalize(st);
    if (!o)
        return NULL;
    json_t *list = json_array();
    if (sqlite3_prepare_v2(f->db,
                           "SELECT a.id, f.mime, f.width, f.height FROM attachments a JOIN files f "
                           "ON f.hash = a.hash WHERE a.preview_of = ?1 ORDER BY f.width",
                           -1, &pv, NULL) == SQLITE_OK) {
        sqlite3_bind_text(pv, 1, id, -1, SQLITE_STATIC);
        while (sqlite3_step(pv) == SQLITE_ROW)
            json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:I}", "id",
                                                  (const char *)sqlite3_column_text(pv, 0), "type",
                                                  (const char *)sqlite3_column_text(pv, 1), "width",
                                                  (json_int_t)sqlite3_column_int64(pv, 2), "height",
                                                  (json_int_t)sqlite3_column_int64(pv, 3)));
        sqlite3_finalize(pv);
    }
    if (json_array_size(list))
        json_object_set_new(o, "previews", list);
    else
        json_decref(list);
    return o;
}

json_t *pv_files_resolve(struct pv_files *f, int64_t account, const char *addr, const char *room,
                         const json_t *ids, const char **code, const char **why)
{
    struct room r;
    *code = "not-a-member";
    *why = "you are not in that room";
    if (!f) {
        *code = "files-unavailable";
        *why = "shared files need a data directory (--data-dir)";
        return NULL;
    }
    if (!find_room(f, room, &r))
        return NULL;
    json_t *out = json_array();
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        json_t *o =
            describe(f, json_string_value(json_array_get(ids, i)), r.id, account, addr, code, why);
        if (!o) {
            json_decref(out);
            out = NULL;
            break;
        }
        json_array_append_new(out, o);
    }
    pthread_mutex_unlock(&f->mu);
    return out;
}

/* ---- the sweep ---- */

unsigned pv_files_sweep(struct pv_files *f, int64_t now)
{
    if (!f)
        return 0;
    unsigned removed = 0;
    int gone = 0;
    sqlite3_stmt *del = NULL, *orphans = NULL, *drop = NULL;
    pthread_mutex_lock(&f->mu);
    if (sqlite3_prepare_v2(f->db,
                           "DELETE FROM attachments WHERE id IN (SELECT id FROM attachments "
                           "WHERE (seq IS NULL AND created < ?1) OR (seq IS NOT NULL AND NOT "
                           "EXISTS (SELECT 1 FROM messages m WHERE m.seq = attachments.seq AND "
                           "m.json ->> '$.type' = 'message')) LIMIT 1000)",
                           -1, &del, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(del, 1, now - PV_FILES_UNSENT_MS);
        if (sqlite3_step(del) == SQLITE_DONE)
            gone = sqlite3_changes(f->db);
    }
    if (sqlite3_prepare_v2(f->db,
                           "SELECT hash FROM files WHERE NOT EXISTS (SELECT 1 FROM attachments a "
                           "WHERE a.hash = files.hash) LIMIT 1000",
                           -1, &orphans, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(f->db, "DELETE FROM files WHERE hash = ?1", -1, &drop, NULL) ==
            SQLITE_OK) {
        while (sqlite3_step(orphans) == SQLITE_ROW) {
            const char *h = (const char *)sqlite3_column_text(orphans, 0);
            if (!h || strlen(h) != 64 || strspn(h, "0123456789abcdef") != 64)
                continue;
            sqlite3_bind_text(drop, 1, h, -1, SQLITE_TRANSIENT);
            bool ok = sqlite3_step(drop) == SQLITE_DONE;
            sqlite3_reset(drop);
            char path[PATHLEN];
            snprintf(path, sizeof(path), "%s/%.2s/%s", f->dir, h, h);
            if (ok && (unlink(path) == 0 || errno == ENOENT))
                removed++;
        }
    }
    sqlite3_finalize(del);
    sqlite3_finalize(orphans);
    sqlite3_finalize(drop);
    pthread_mutex_unlock(&f->mu);
    if (gone || removed)
        pv_info("files: sweep removed %d attachment(s) of deleted, expired or never sent "
                "messages and %u file(s) nothing refers to any more",
                gone, removed);
    return removed;
}

/* Without a data directory (or when it could not be opened). */
static int on_unavailable(struct mg_connection *conn, void *ud)
{
    (void)ud;
    return pv_api_error(conn, 503, "Service Unavailable", "files-unavailable",
                        "shared files need a data directory (--data-dir)", NULL);
}

void pv_files_register(struct mg_context *ctx, struct pv_files *f)
{
    mg_set_request_handler(ctx, "/api/files$", f ? on_upload : on_unavailable, f);
    mg_set_request_handler(ctx, "/files/", f ? on_download : on_unavailable, f);
}
