#!/bin/sh
# Undo install.sh for the current user: remove exactly the files, links and (now empty) folders listed in
# its manifest ($XDG_DATA_HOME/photo-denoiser/install-manifest.txt), then refresh the desktop caches.
# Your own data in that folder (fine-tuned models, settings) is never touched.
#
#   ./uninstall.sh [--quiet]
set -eu

DATA=${XDG_DATA_HOME:-$HOME/.local/share}
BIN_DIR=$HOME/.local/bin
MANIFEST=$DATA/photo-denoiser/install-manifest.txt
QUIET=0

die() { echo "uninstall.sh: $*" >&2; exit 1; }
say() { [ "$QUIET" = 1 ] || echo "$@"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quiet) QUIET=1; shift ;;
        -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (try --help)" ;;
    esac
done

[ -f "$MANIFEST" ] || die "nothing to uninstall: no manifest at $MANIFEST"

# Only paths inside the two places install.sh writes to are ever removed, whatever the manifest says.
inside_our_places() {
    case "$1" in
        *"/../"*|*"/.."|*"/./"*) return 1 ;;
        "$DATA"/*|"$BIN_DIR"/*) return 0 ;;
        *) return 1 ;;
    esac
}
# Folders may also be $DATA, $BIN_DIR or their parents, when install.sh created them (and they are empty).
is_our_folder() {
    inside_our_places "$1" && return 0
    case "$1" in *"/.."*|*"/./"*|/) return 1 ;; esac
    case "$DATA/" in "$1"/*) return 0 ;; esac
    case "$BIN_DIR/" in "$1"/*) return 0 ;; esac
    return 1
}

LINES=$(mktemp)
trap 'rm -f "$LINES"' EXIT
# Newest first: files go before the folders that hold them.
awk '{ a[NR] = $0 } END { for (i = NR; i >= 1; i--) print a[i] }' "$MANIFEST" > "$LINES"

say "Uninstalling Photo Denoiser from $DATA"
CACHE=""
while read -r kind path; do
    [ -n "$path" ] || continue
    if [ "$kind" = dir ]; then is_our_folder "$path"; else inside_our_places "$path"; fi ||
        { echo "  skipped (outside $DATA and $BIN_DIR): $path" >&2; continue; }
    case "$kind" in
        file) if [ -f "$path" ]; then rm -f "$path"; say "  removed file $path"; fi ;;
        link) if [ -L "$path" ]; then rm -f "$path"; say "  removed link $path"; fi ;;
        dir)  if [ -d "$path" ] && rmdir "$path" 2>/dev/null; then say "  removed dir $path"; fi ;;
        cache) CACHE=$path ;;  # handled below, after the desktop files are gone
        *) echo "  skipped unknown manifest entry: $kind $path" >&2 ;;
    esac
done < "$LINES"

# The MIME cache that install.sh caused to exist: rebuild it, and delete it (and its folder, if the
# install created that) when no other application is left in that folder to describe.
if command -v update-desktop-database >/dev/null 2>&1 && [ -d "$DATA/applications" ]; then
    update-desktop-database -q "$DATA/applications" || true
fi
if [ -n "$CACHE" ] && [ -f "$CACHE" ]; then
    folder=$(dirname "$CACHE")
    if [ -z "$(find "$folder" -maxdepth 1 -name '*.desktop' -print -quit)" ]; then
        rm -f "$CACHE"; say "  removed cache $CACHE"
    fi
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$DATA/icons/hicolor/icon-theme.cache" ]; then
    gtk-update-icon-cache -q -t -f "$DATA/icons/hicolor" || true
fi
# Folders above the cache folder that install.sh created and that are now empty.
while read -r kind path; do
    if [ "$kind" = dir ] && [ -d "$path" ] && is_our_folder "$path" && rmdir "$path" 2>/dev/null; then
        say "  removed dir $path"
    fi
done < "$LINES"
say "Done."
