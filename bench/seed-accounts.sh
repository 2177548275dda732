#!/usr/bin/env bash
# seed-accounts.sh N DATA_DIR COOKIES -- the bench's many accounts: N
# accounts (b0 .. bN-1, the names palaver-bench gives client i) with one
# signed-in session each, written straight into DATA_DIR/palaver.db (made
# by `palaverd --create-admin` first, which creates the schema), and the N
# session cookies to COOKIES, one per line, for palaver-bench --cookies.
#
# Why not register and sign in over the API: each costs an Argon2id hash
# (64 MiB, about 0.1 s), and palaverd throttles registrations and logins
# per address -- as it should; the bench measures the chat, not sign-in.
# The accounts have no password (their hash is "!", which no password
# verifies): only these sessions sign them in. Session tokens are stored
# as palaverd stores them: hex BLAKE2b-256 of the token (b2sum -l 256 is
# the same function as libsodium's crypto_generichash with 32 bytes).
# Bench only: it refuses a database of another schema version.
set -euo pipefail
n=$1 dir=$2 cookies=$3
db=$dir/palaver.db
version=$(sqlite3 "$db" 'PRAGMA user_version')
[ "$version" = 8 ] || { echo "seed-accounts.sh: palaver.db has schema $version, not 8" >&2; exit 2; }
now=$(date +%s) # seconds, as accounts.c keeps them
expires=$((now + 30 * 86400))
sql=$(mktemp)
: >"$cookies"
{
  echo "BEGIN;"
  for i in $(seq 0 $((n - 1))); do
    token=$(head -c 32 /dev/urandom | basenc --base64url | tr -d '=\n')
    hash=$(printf '%s' "$token" | b2sum -l 256 | cut -d' ' -f1)
    echo "INSERT INTO users (name, name_key, pass_hash, role, created) VALUES ('b$i', 'b$i', '!', 'member', $now);"
    echo "INSERT INTO sessions (token_hash, user_id, created, last_used, expires) VALUES ('$hash', last_insert_rowid(), $now, $now, $expires);"
    echo "palaver_session=$token" >>"$cookies"
  done
  echo "COMMIT;"
} >"$sql"
sqlite3 "$db" <"$sql"
rm -f "$sql"
