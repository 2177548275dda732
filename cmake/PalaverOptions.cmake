# Build options shared by every target: warnings, -Werror in CI, sanitizers.

set(PV_SANITIZE "" CACHE STRING "Sanitizer build: '', 'address' (ASan+UBSan) or 'thread' (TSan)")
set_property(CACHE PV_SANITIZE PROPERTY STRINGS "" address thread)
option(PV_WERROR "Treat warnings as errors (CI turns this on)" OFF)

add_library(pv_warnings INTERFACE)
target_compile_options(pv_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wformat=2 -Wvla -Wcast-align -Wpointer-arith
  -Werror=implicit-function-declaration -Werror=incompatible-pointer-types)
if(PV_WERROR)
  target_compile_options(pv_warnings INTERFACE -Werror)
endif()

option(PV_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)
if(PV_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "PV_FUZZ needs clang: configure with CC=clang")
  endif()
  # Everything is instrumented for coverage and checked by ASan+UBSan; only
  # the fuzz targets link libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(PV_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(PV_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT PV_SANITIZE STREQUAL "")
  message(FATAL_ERROR "PV_SANITIZE must be '', 'address' or 'thread'")
endif()
