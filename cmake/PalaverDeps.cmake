# Every dependency comes from Debian's packages (see README, "Dependencies").

find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

# CivetWeb 1.15: Debian ships a CMake config. Its targets file insists that
# /usr/bin/civetweb (package 'civetweb') exists, so fall back to a plain
# header/library search when only libcivetweb-dev is installed.
add_library(pv_civetweb INTERFACE)
if(EXISTS /usr/bin/civetweb OR civetweb_DIR)
  find_package(civetweb 1.15 CONFIG REQUIRED)
  target_link_libraries(pv_civetweb INTERFACE civetweb::civetweb)
else()
  find_path(CIVETWEB_INCLUDE_DIR civetweb.h REQUIRED)
  find_library(CIVETWEB_LIBRARY NAMES civetweb REQUIRED)
  target_include_directories(pv_civetweb INTERFACE ${CIVETWEB_INCLUDE_DIR})
  target_link_libraries(pv_civetweb INTERFACE ${CIVETWEB_LIBRARY} ${CMAKE_DL_LIBS})
endif()

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

# SQLite: durable history (store.c).
pkg_check_modules(SQLITE REQUIRED IMPORTED_TARGET sqlite3)
add_library(pv_sqlite INTERFACE)
target_link_libraries(pv_sqlite INTERFACE PkgConfig::SQLITE)
