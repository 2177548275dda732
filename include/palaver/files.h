/* files.h -- shared files (docs/files.md): uploads streamed to disk,
 * content-addressed by SHA-256 under <data-dir>/files, their metadata in
 * palaver.db, served with the access rule of the room they were shared in.
 *
 *   POST /api/files?room=R&name=N   body: the file's bytes   -> 201 JSON
 *   GET  /files/<id>                (Range: one range)       -> 200 / 206
 *
 * Threads: the handlers run on CivetWeb workers, several at once. What
 * they share: the SQLite connection and the libmagic handle, both under
 * `mu` (held for one statement or one detection, never around network
 * I/O), and the upload slots with the shared read pace, under `pace_mu`
 * (--upload-slots, --upload-slots-per-ip, --upload-rate; held for a few
 * arithmetic steps). The sweep runs on main and takes `mu`. Files on disk are written under a
 * private temporary name and renamed into place: a reader never sees a partial file, and two
 * uploads of the same bytes race harmlessly (the rename is atomic and the content is the same).
 */
#ifndef PALAVER_FILES_H
#define PALAVER_FILES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mg_context;
struct pv_accounts;
struct pv_config;
struct pv_live;
struct pv_files;

/* Opens the files store in cfg->data_dir (palaver.db already upgraded by
 * the history store). NULL with err set when it cannot (no data
 * directory: uploads answer 503). */
struct pv_files *pv_files_open(const struct pv_config *cfg, struct pv_accounts *accounts,
                               struct pv_live *live, char *err, size_t errsz);
void pv_files_close(struct pv_files *f);
/* f NULL: both endpoints answer 503 (no data directory). */
void pv_files_register(struct mg_context *ctx, struct pv_files *f);

/* Previews (docs/files.md): the uploading page draws an image on a
 * canvas and uploads the result with ?preview=<the original's id>; each
 * is a WebP, JPEG or PNG of at most PV_PREVIEW_MAX px a side, at most
 * PV_PREVIEWS of one original. */
#define PV_PREVIEW_MAX 1280
#define PV_PREVIEWS 2

/* Files in messages. A message names its files by id
 * ({"type":"message","files":[id,...]}); the worker that decoded it calls
 * this before queueing it, and the message carries what it returns in
 * their place -- one description per file, encoded once with the message:
 *   {"id","name","size","type","inline","width"?,"height"?,
 *    "previews"?:[{"id","type","width","height"},...]}
 * Each must be the sender's own upload (`account`, or a guest's from
 * `addr`), into `room` (NULL: the lobby), not yet in a message, not a
 * preview. NULL with *code and *why (a protocol error) otherwise.
 * Threads: any worker (takes mu). */
json_t *pv_files_resolve(struct pv_files *f, int64_t account, const char *addr, const char *room,
                         const json_t *ids, const char **code, const char **why);

/* Uploads never sent in a message are removed after this long. */
#define PV_FILES_UNSENT_MS (24ll * 3600 * 1000)

/* Removes attachments whose message was deleted or retention took (or
 * that were never sent within PV_FILES_UNSENT_MS), then the content
 * nothing refers to any more, from palaver.db and the disk; at most 1000
 * of each a call. Returns the files removed from disk. Threads: main's
 * supervisor loop, every --files-sweep seconds (takes mu: never while an
 * upload is put in place). */
unsigned pv_files_sweep(struct pv_files *f, int64_t now);

#endif
