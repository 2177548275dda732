/* ids.h -- random identifiers.
 *
 * Threads: any.
 */
#ifndef PALAVER_IDS_H
#define PALAVER_IDS_H

#define PV_KEY_LEN 36 /* UUID text */
#define PV_ID_LEN 16  /* public id: 64 random bits in hex */

/* Writes a random UUID v4 (RFC 9562) and a 16-hex-digit public id, from
 * getrandom(2). */
void pv_new_key(char key[PV_KEY_LEN + 1]);
void pv_new_id(char id[PV_ID_LEN + 1]);

#endif
