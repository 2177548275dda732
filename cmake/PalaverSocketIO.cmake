# Seed 002's client library: socket.io-client, pinned in cmake/socketio/
# (package.json and its integrity-checked lock), fetched by `npm ci` at
# build time and its dist/socket.io.js built into palaverd, which serves it
# at /socket.io/socket.io.js (src/socketio.c, docs/dialects.md). Never
# copied into the tree. With PALAVER_SOCKETIO_CLIENT=OFF (a build without
# network) palaverd answers that path 404 and still speaks the protocol.
option(PALAVER_SOCKETIO_CLIENT
  "Build socket.io-client (npm, at build time) into palaverd for seed 002's page" ON)
set(PV_SIO_DIR ${CMAKE_BINARY_DIR}/socketio)
set(PV_SIO_C ${PV_SIO_DIR}/socketio_js.c)
file(MAKE_DIRECTORY ${PV_SIO_DIR})
if(PALAVER_SOCKETIO_CLIENT)
  find_program(PV_NPM npm)
  if(NOT PV_NPM)
    message(FATAL_ERROR "npm is needed to fetch socket.io-client for seed 002's page "
      "(tests/install-deps.sh installs it); or configure with -DPALAVER_SOCKETIO_CLIENT=OFF")
  endif()
  set(PV_SIO_SRC ${CMAKE_CURRENT_SOURCE_DIR}/cmake/socketio)
  add_custom_command(OUTPUT ${PV_SIO_C}
    COMMAND ${CMAKE_COMMAND} -E copy ${PV_SIO_SRC}/package.json ${PV_SIO_SRC}/package-lock.json
      ${PV_SIO_DIR}/
    COMMAND ${PV_NPM} ci --ignore-scripts --no-audit --no-fund --silent
    COMMAND ${CMAKE_COMMAND}
      -DIN=${PV_SIO_DIR}/node_modules/socket.io-client/dist/socket.io.js
      -DPKG=${PV_SIO_DIR}/node_modules/socket.io-client/package.json
      -DOUT=${PV_SIO_C} -P ${CMAKE_CURRENT_SOURCE_DIR}/cmake/embed.cmake
    WORKING_DIRECTORY ${PV_SIO_DIR}
    DEPENDS ${PV_SIO_SRC}/package.json ${PV_SIO_SRC}/package-lock.json
      ${CMAKE_CURRENT_SOURCE_DIR}/cmake/embed.cmake
    COMMENT "socket.io-client from npm (pinned in cmake/socketio/), built into palaverd"
    VERBATIM)
else()
  file(WRITE ${PV_SIO_C}
    "/* PALAVER_SOCKETIO_CLIENT=OFF: no socket.io-client built in. */\n#include <stddef.h>\n"
    "const unsigned char pv_socketio_js[] = {0};\nconst size_t pv_socketio_js_len = 0;\n"
    "const char pv_socketio_js_version[] = \"\";\n")
endif()
# The generated source alone (tests/lint.sh builds it: the compilation
# database names it).
add_custom_target(pv_socketio_js_source DEPENDS ${PV_SIO_C})
add_library(pv_socketio_js STATIC ${PV_SIO_C})
