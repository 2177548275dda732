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
[ "$version" = 9 ] || { echo "seed-accounts.sh: palaver.db has schema $version, not 9" >&2; exit 2; }
now=$(date +%s) # seconds, as accounts.c keeps them
expires=$((now + 30 * 86400))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# n random tokens at once: 33 random bytes are exactly 44 base64url
# characters; a token is 43 of them (what palaverd's own are: 32 bytes).
head -c $((33 * n)) /dev/urandom | basenc --base64url -w 44 | cut -c1-43 >"$tmp/tokens"
mapfile -t tokens <"$tmp/tokens"
for i in $(seq 0 $((n - 1))); do printf '%s' "${tokens[$i]}" >"$tmp/t$i"; done
(cd "$tmp" && for i in $(seq 0 $((n - 1))); do echo "t$i"; done | xargs b2sum -l 256) >"$tmp/hashes"
mapfile -t hashes < <(cut -d' ' -f1 "$tmp/hashes")
: >"$cookies"
{
  echo "BEGIN;"
  for i in $(seq 0 $((n - 1))); do
    echo "INSERT INTO users (name, name_key, pass_hash, role, created) VALUES ('b$i', 'b$i', '!', 'member', $now);"
    echo "INSERT INTO sessions (token_hash, user_id, created, last_used, expires) VALUES ('${hashes[$i]}', last_insert_rowid(), $now, $now, $expires);"
    echo "palaver_session=${tokens[$i]}" >>"$cookies"
  done
  echo "COMMIT;"
} >"$tmp/seed.sql"
sqlite3 "$db" <"$tmp/seed.sql"
