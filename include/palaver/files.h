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
 * I/O), and the count of uploads in progress (an atomic, bounded by
 * --upload-slots). Files on disk are written under a private temporary
 * name and renamed into place: a reader never sees a partial file, and
 * two uploads of the same bytes race harmlessly (the rename is atomic and
 * the content is the same).
 */
#ifndef PALAVER_FILES_H
#define PALAVER_FILES_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
