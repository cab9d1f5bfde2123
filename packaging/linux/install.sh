#!/bin/sh
# Register Photo Denoiser with the desktop for the current user: menu entry (.desktop), icons (hicolor),
# AppStream metainfo, "Open with" for image and RAW types, and a ~/.local/bin/photo-denoiser link.
# Nothing outside $XDG_DATA_HOME (default ~/.local/share) and ~/.local/bin is touched; no root needed.
# Every path created is printed and written to a manifest, which uninstall.sh reads to remove exactly those.
#
#   ./install.sh                     # from the unpacked bundle (next to the photo-denoiser executable)
#   packaging/linux/install.sh --exec /opt/photo-denoiser/photo-denoiser   # from a source checkout
#   options: --exec PATH  the executable to launch;  --no-bin-link  skip ~/.local/bin/photo-denoiser
set -eu

APP_ID=io.github.photodenoiser.Denoiser
BIN_NAME=photo-denoiser
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
BIN_DIR=$HOME/.local/bin
MANIFEST=$DATA/photo-denoiser/install-manifest.txt
EXEC=""
BIN_LINK=1

die() { echo "install.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --exec) [ $# -ge 2 ] || die "--exec needs a path"; EXEC=$2; shift 2 ;;
        --no-bin-link) BIN_LINK=0; shift ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (try --help)" ;;
    esac
done

case "$DATA" in /*) ;; *) die "XDG_DATA_HOME must be an absolute path, got '$DATA'" ;; esac

# The executable: --exec, else the bundle this script sits in, else a bundle built in the source tree.
if [ -z "$EXEC" ]; then
    for candidate in "$HERE/$BIN_NAME" "$HERE/../../dist/$BIN_NAME/$BIN_NAME"; do
        if [ -f "$candidate" ]; then EXEC=$candidate; break; fi
    done
fi
[ -n "$EXEC" ] || die "cannot find the $BIN_NAME executable next to this script; pass --exec PATH"
[ -f "$EXEC" ] && [ -x "$EXEC" ] || die "'$EXEC' is not an executable file"
EXEC=$(cd "$(dirname "$EXEC")" && pwd)/$(basename "$EXEC")
case "$EXEC" in *[\"\`\$\\]*) die "the path '$EXEC' contains a quote, backtick, dollar or backslash; move the bundle" ;; esac

# Desktop file and metainfo sit beside this script (bundle and source tree alike); icons in resources/.
DESKTOP_SRC=$HERE/$APP_ID.desktop
METAINFO_SRC=$HERE/$APP_ID.metainfo.xml
ICONS_SRC=""
for candidate in "$HERE/_internal/resources/icons" "$HERE/../../resources/icons"; do
    if [ -f "$candidate/$APP_ID.svg" ]; then ICONS_SRC=$(cd "$candidate" && pwd); break; fi
done
[ -f "$DESKTOP_SRC" ] || die "missing $DESKTOP_SRC"
[ -f "$METAINFO_SRC" ] || die "missing $METAINFO_SRC"
[ -n "$ICONS_SRC" ] || die "cannot find the icons (resources/icons/$APP_ID.svg) near $HERE"

# A previous install is removed first, so the manifest always describes exactly one install.
if [ -f "$MANIFEST" ]; then
    echo "Removing the previous install first"
    sh "$HERE/uninstall.sh" --quiet
fi

TMP_MANIFEST=$(mktemp)
trap 'rm -f "$TMP_MANIFEST"' EXIT
record() { echo "$1 $2" >> "$TMP_MANIFEST"; echo "  $1 $2"; }

# Make a directory (and missing parents), recording only the ones this install created.
make_dir() {
    if [ ! -d "$1" ]; then
        make_dir "$(dirname "$1")"
        mkdir "$1"
        record dir "$1"
    fi
}

put_file() {  # put_file SOURCE TARGET: copy, mode 644, record
    make_dir "$(dirname "$2")"
    cp "$1" "$2.tmp.$$" && chmod 644 "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
    record file "$2"
}

echo "Installing Photo Denoiser for $(id -un) into $DATA (executable: $EXEC)"

# .desktop with absolute Exec/TryExec, so it works whether or not ~/.local/bin is on PATH.
QUOTED_EXEC=$EXEC
case "$EXEC" in *" "*) QUOTED_EXEC="\"$EXEC\"" ;; esac
DESKTOP_TMP=$(mktemp)
sed -e "s|^Exec=.*|Exec=$QUOTED_EXEC %F|" -e "s|^TryExec=.*|TryExec=$EXEC|" "$DESKTOP_SRC" > "$DESKTOP_TMP"
put_file "$DESKTOP_TMP" "$DATA/applications/$APP_ID.desktop"
rm -f "$DESKTOP_TMP"

put_file "$METAINFO_SRC" "$DATA/metainfo/$APP_ID.metainfo.xml"
put_file "$ICONS_SRC/$APP_ID.svg" "$DATA/icons/hicolor/scalable/apps/$APP_ID.svg"
for png in "$ICONS_SRC"/hicolor/*/apps/"$APP_ID".png; do
    size=$(basename "$(dirname "$(dirname "$png")")")
    put_file "$png" "$DATA/icons/hicolor/$size/apps/$APP_ID.png"
done

if [ "$BIN_LINK" = 1 ]; then
    if [ -e "$BIN_DIR/$BIN_NAME" ] || [ -L "$BIN_DIR/$BIN_NAME" ]; then
        echo "  (left alone: $BIN_DIR/$BIN_NAME already exists)"
    else
        make_dir "$BIN_DIR"
        ln -s "$EXEC" "$BIN_DIR/$BIN_NAME"
        record link "$BIN_DIR/$BIN_NAME"
    fi
fi

make_dir "$(dirname "$MANIFEST")"
record file "$MANIFEST"
mv "$TMP_MANIFEST" "$MANIFEST"
trap - EXIT

# Caches: refresh the ones that exist; never create an icon cache the user did not have (a stale cache
# would hide icons that other apps install later).
if command -v update-desktop-database >/dev/null 2>&1; then
    had_cache=0; [ -f "$DATA/applications/mimeinfo.cache" ] && had_cache=1
    update-desktop-database -q "$DATA/applications" || echo "  (update-desktop-database failed; menus update at next login)"
    if [ "$had_cache" = 0 ] && [ -f "$DATA/applications/mimeinfo.cache" ]; then
        echo "cache $DATA/applications/mimeinfo.cache" >> "$MANIFEST"
        echo "  cache $DATA/applications/mimeinfo.cache"
    fi
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$DATA/icons/hicolor/icon-theme.cache" ]; then
    gtk-update-icon-cache -q -t -f "$DATA/icons/hicolor" || true
fi

echo "Done: 'Photo Denoiser' is in the applications menu and in 'Open with' for JPEG, PNG, TIFF, WebP, BMP and RAW files."
if command -v xdg-mime >/dev/null 2>&1; then
    current=$(xdg-mime query default image/jpeg 2>/dev/null || true)
    echo "Current default for JPEG: ${current:-none}. To open JPEGs with Photo Denoiser by default:"
    echo "  xdg-mime default $APP_ID.desktop image/jpeg"
fi
echo "Manifest: $MANIFEST (uninstall: $HERE/uninstall.sh)"
