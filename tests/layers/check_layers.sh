#!/usr/bin/env bash
# Checks that the layering of src/ is enforced at compile time: a translation
# unit of LAYER, compiled with the include directories LAYER's library is
# compiled with (its view build/layers/LAYER, which holds only the folders it
# may use), can include ALLOWED but not one of the FORBIDDEN headers.
#
# Usage: check_layers.sh CXX STD SRC LAYER INCLUDE_DIRS ALLOWED FORBIDDEN...
#   CXX           the C++ compiler
#   STD           the language standard, e.g. c++23
#   SRC           the source tree's src/ (each FORBIDDEN header must exist there)
#   LAYER         the layer the translation unit belongs to, e.g. guard
#   INCLUDE_DIRS  the layer library's include directories, ':'-separated
#   ALLOWED       a header the layer may include: must compile (the control)
#   FORBIDDEN...  headers of layers it may not use: each must fail, as not found
set -u

if [ $# -lt 7 ]; then
  echo "usage: $0 CXX STD SRC LAYER INCLUDE_DIRS ALLOWED FORBIDDEN..." >&2
  exit 2
fi
cxx=$1 std=$2 src=$3 layer=$4 include_dirs=$5 allowed=$6
shift 6

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The translation unit sits in a folder named after the layer, as its sources do.
mkdir -p "$work/$layer"
tu="$work/$layer/layer_check.cpp"

flags=("-std=$std" -fsyntax-only)
IFS=':' read -ra dirs <<<"$include_dirs"
for d in "${dirs[@]}"; do
  [ -n "$d" ] && flags+=("-I$d")
done
# The layer's view must be among them: it is what is being checked.
case ":$include_dirs:" in
  *"/layers/$layer:"*) ;;
  *)
    echo "FAIL: the include directories of '$layer' hold no view .../layers/$layer: $include_dirs" >&2
    exit 1
    ;;
esac

# Compiles a translation unit that includes $1; its diagnostics go to $work/err.
compile() {
  printf '#include "%s"\nint layer_check() { return 0; }\n' "$1" >"$tu"
  "$cxx" "${flags[@]}" "$tu" 2>"$work/err"
}

# The control: an allowed header compiles, so a failure below is not a broken command.
if ! compile "$allowed"; then
  echo "FAIL: $layer cannot include its own \"$allowed\"; the compile command is broken:" >&2
  echo "  $cxx ${flags[*]} $tu" >&2
  cat "$work/err" >&2
  exit 1
fi
echo "ok: $layer includes \"$allowed\""

status=0
for h in "$@"; do
  if [ ! -f "$src/$h" ]; then
    echo "FAIL: $src/$h does not exist; name a header that does" >&2
    status=1
    continue
  fi
  if compile "$h"; then
    echo "FAIL: $layer includes \"$h\", a layer it may not use, and it compiled" >&2
    status=1
  elif grep -qE "$h: No such file or directory|'$h' file not found" "$work/err"; then
    echo "ok: $layer cannot include \"$h\" (not found in its view)"
  else
    echo "FAIL: including \"$h\" from $layer failed, but not because it was not found:" >&2
    cat "$work/err" >&2
    status=1
  fi
done
exit $status
