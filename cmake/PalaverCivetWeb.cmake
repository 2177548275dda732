# CivetWeb 1.15 from Debian 12's own source package (apt-get source
# civetweb: upstream 1.15 plus Debian's patches), with palaver's patch
# cmake/civetweb/civetweb-1.15-palaver.patch on top, compiled into palaverd
# as a static library. tests/install-deps.sh fetches the source.
#
# Why not the shared libcivetweb1: CivetWeb 1.15 allocates whatever length
# a WebSocket frame header announces (up to 2 GiB) before a byte of it has
# arrived, and a connection holds a worker until its request head is
# complete or the whole write timeout has passed; neither has a hook. The
# patch (docs/civetweb-patch.md) adds four options and one return value:
#   prespawn_threads          only these workers start with the server; the
#                             rest start on demand (unused slots are free)
#   websocket_max_frame_size  frames over it are refused at the header (1009)
#   request_head_timeout_ms   the request head has its own, short bound
#   init_connection != 0      refuses a connection before its request is read
#                             (per-address limits from accept)
# Build settings follow Debian's (debian/rules and CivetWeb's CMake
# defaults): WebSockets on, 102400-byte worker stacks, no IPv6, zlib, Lua or
# server stats; unlike Debian: no CGI (palaverd never runs scripts), no
# TLS (the terminator in front does TLS), thread-safe time formatting, and
# -fconserve-stack (fewer stack pages held under each WebSocket read loop).
set(PV_CIVETWEB_SOURCE "/usr/local/src/palaver/civetweb-1.15+dfsg" CACHE PATH
    "Debian's CivetWeb 1.15 source package, unpacked (tests/install-deps.sh puts it here)")
if(NOT EXISTS "${PV_CIVETWEB_SOURCE}/src/civetweb.c")
  message(FATAL_ERROR "CivetWeb source not found in ${PV_CIVETWEB_SOURCE}: run "
          "tests/install-deps.sh (it runs 'apt-get source civetweb' there), or set "
          "-DPV_CIVETWEB_SOURCE=<unpacked civetweb 1.15 source package>")
endif()

set(PV_CIVETWEB_PATCH ${CMAKE_CURRENT_SOURCE_DIR}/cmake/civetweb/civetweb-1.15-palaver.patch)
set(PV_CIVETWEB_C ${CMAKE_BINARY_DIR}/civetweb/civetweb.c)
find_program(PV_PATCH patch REQUIRED)
add_custom_command(
  OUTPUT ${PV_CIVETWEB_C}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/civetweb
  COMMAND ${PV_PATCH} --quiet --forward -o ${PV_CIVETWEB_C}
          ${PV_CIVETWEB_SOURCE}/src/civetweb.c ${PV_CIVETWEB_PATCH}
  DEPENDS ${PV_CIVETWEB_SOURCE}/src/civetweb.c ${PV_CIVETWEB_PATCH}
  COMMENT "Patching Debian's CivetWeb 1.15 with palaver's patch"
  VERBATIM)

# The patched source alone (tests/lint.sh needs it to exist, since it is in
# the compilation database, before anything is built).
add_custom_target(pv_civetweb_source DEPENDS ${PV_CIVETWEB_C})

add_library(pv_civetweb STATIC ${PV_CIVETWEB_C})
# The .inl files civetweb.c includes stay in the source package's src/.
target_include_directories(pv_civetweb PRIVATE ${PV_CIVETWEB_SOURCE}/src)
target_include_directories(pv_civetweb SYSTEM PUBLIC ${PV_CIVETWEB_SOURCE}/include)
# REENTRANT_TIME: gmtime_r for the Date header; with plain gmtime(3) two
# workers answering at once race on libc's static buffer (ThreadSanitizer
# reported it in test_hostile's slowloris test).
target_compile_definitions(pv_civetweb PRIVATE USE_WEBSOCKET NO_CGI NO_SSL REENTRANT_TIME
                           USE_STACK_SIZE=102400)
# Third-party code: none of palaver's warnings, and no sanitizer
# instrumentation (as the shared library had none): the sanitizers judge
# palaver's code; their runtimes still see every thread and lock.
# -fconserve-stack is gcc's alone: clang (the fuzz build, lint's compilation
# database) has no such flag and refuses to compile with it.
target_compile_options(pv_civetweb PRIVATE -w -fno-sanitize=all -fstack-protector-strong
                       $<$<C_COMPILER_ID:GNU>:-fconserve-stack>
                       $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
set_target_properties(pv_civetweb PROPERTIES C_STANDARD 11 C_EXTENSIONS ON
                      POSITION_INDEPENDENT_CODE ON)
target_link_libraries(pv_civetweb PUBLIC Threads::Threads ${CMAKE_DL_LIBS})
