# Every dependency comes from Debian's packages (see docs/design.md, "Dependencies").

find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

# CivetWeb 1.15: Debian's source package, patched and built in
# (cmake/PalaverCivetWeb.cmake).
include(PalaverCivetWeb)

# liburcu's wait-free concurrent queue (wfcqueue) carries the inbound events
# and the writers' ready clients.
pkg_check_modules(URCU REQUIRED IMPORTED_TARGET liburcu-cds)
add_library(pv_urcu INTERFACE)
target_link_libraries(pv_urcu INTERFACE PkgConfig::URCU)

pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson>=2.13)
add_library(Jansson::Jansson ALIAS PkgConfig::JANSSON)

pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
add_library(pv_systemd INTERFACE)
target_link_libraries(pv_systemd INTERFACE PkgConfig::SYSTEMD)

# ICU: the Unicode data behind display names (nickname.c): categories,
# default-ignorable and emoji properties, scripts, NFC/NFKC_Casefold and
# the UTS #39 confusable skeleton (uspoof, in icu-i18n).
pkg_check_modules(ICU REQUIRED IMPORTED_TARGET icu-uc icu-i18n)
add_library(pv_icu INTERFACE)
target_link_libraries(pv_icu INTERFACE PkgConfig::ICU)

# SQLite: durable history (store.c).
pkg_check_modules(SQLITE REQUIRED IMPORTED_TARGET sqlite3)
add_library(pv_sqlite INTERFACE)
target_link_libraries(pv_sqlite INTERFACE PkgConfig::SQLITE)

# libsodium: accounts (accounts.c): Argon2id password hashes
# (crypto_pwhash_str, verified in constant time), session tokens from its
# CSPRNG, BLAKE2b for the stored token hashes, and memory wiping.
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium>=1.0.18)
add_library(pv_sodium INTERFACE)
target_link_libraries(pv_sodium INTERFACE PkgConfig::SODIUM)

# libmagic (the file command's library): shared files' types from their
# bytes, never from the client's claim (files.c, docs/files.md).
pkg_check_modules(MAGIC REQUIRED IMPORTED_TARGET libmagic)
add_library(pv_magic INTERFACE)
target_link_libraries(pv_magic INTERFACE PkgConfig::MAGIC)

# OpenSSL's libcrypto: the SHA-256 of shared files as they are received
# (files.c). Not libsodium's: its SHA-256 is portable C, and measured
# under 4 uploads at a time it took 55 % of palaverd's CPU
# (docs/files.md); libcrypto's uses the CPU's SHA extensions (1.7 GB/s on
# this machine's cores, `openssl speed -evp sha256`). No TLS in palaverd
# (docs/tls.md): libcrypto only.
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
add_library(pv_crypto INTERFACE)
target_link_libraries(pv_crypto INTERFACE OpenSSL::Crypto)
