#!/usr/bin/env bash
# Static analysis, run by tests/run-all.sh; fails on any finding.
#  - cppcheck (warning, style, performance, portability) on src/, bench/ and
#    tests/, using the compile commands of build/ (not CivetWeb's source,
#    which build/civetweb/ holds patched: third-party code);
#  - clang-tidy on src/ with the checks listed in .clang-tidy;
#  - clang-format: every C file of the repository as .clang-format says.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DPV_WERROR=ON -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
# The patched CivetWeb source and socket.io-client's embedded file are
# generated; the compilation database names them.
cmake --build build --target pv_civetweb_source pv_socketio_js_source >/dev/null
echo "=== cppcheck"
cppcheck --project=build/compile_commands.json --enable=warning,style,performance,portability \
  --inline-suppr --error-exitcode=1 --quiet --suppress=missingIncludeSystem \
  --file-filter='src/*' --file-filter='bench/*' --file-filter='tests/*' \
  --suppress=unmatchedSuppression
echo "cppcheck: clean"
echo "=== clang-tidy"
status=0
for f in src/*.c src/*/*.c; do
  clang-tidy -p build --quiet "$f" 2>/dev/null || status=1
done
[ $status -eq 0 ] && echo "clang-tidy: clean"
echo "=== clang-format"
unformatted=()
while IFS= read -r f; do
  clang-format-14 --dry-run -Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done < <(git ls-files '*.c' '*.h')
if [ ${#unformatted[@]} -gt 0 ]; then
  echo "clang-format: not formatted (run clang-format-14 -i on them): ${unformatted[*]}"
  status=1
else
  echo "clang-format: clean"
fi
exit $status
