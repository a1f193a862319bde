#!/usr/bin/env bash
# Rewrites the given files from common/'s old flat layout to its libraries
# (docs/architecture.md, "Layers"), using the old -> new table in
# tools/common-layout-moves.txt. By default only #include lines change;
# with --mentions every mention of a moved path does (comments, docs, scripts).
# Running it twice changes nothing more.
#
# usage: tools/apply-common-layout-moves.sh [--mentions] FILE...
#   e.g. on a branch after merging the layout:
#   git ls-files '*.cc' '*.h' | xargs tools/apply-common-layout-moves.sh
#   git grep -lE 'common/[a-z_0-9]+(\.h|\.cc|/)' -- ':!tools/common-layout-moves.txt' \
#     | xargs tools/apply-common-layout-moves.sh --mentions
set -euo pipefail
table="$(dirname "$0")/common-layout-moves.txt"
mentions=0
if [ "${1:-}" = --mentions ]; then mentions=1; shift; fi
[ $# -gt 0 ] || { echo "usage: $0 [--mentions] FILE..." >&2; exit 2; }
script=$(mktemp)
trap 'rm -f "$script"' EXIT
grep -v '^#' "$table" | while read -r old new; do
  [ -n "$old" ] || continue
  if [ $mentions -eq 1 ]; then
    # The path as a whole word: not inside a longer path or name.
    printf 's#(?<![\\w/.])\\Q%s\\E(?![\\w])#%s#g;\n' "$old" "$new"
  else
    printf 's#^(\\s*\\#\\s*include\\s*)"\\Q%s\\E"#$1"%s"#;\n' "$old" "$new"
  fi
done >"$script"
perl -pi -e "$(cat "$script")" "$@"
