"""Byte-level metadata helpers for photo I/O: EXIF (TIFF IFDs) and PNG chunks.

Why our own code instead of Pillow's Exif object: Pillow re-guesses tag types when it re-serialises, drops
the Exif sub-IFD when writing TIFF, and has no way to write PNG metadata next to OpenCV-encoded 16-bit
pixels. Working on raw IFD entries keeps every tag's type and bytes exactly, so camera EXIF survives a
load → save round trip unchanged except for the orientation tag.

EXIF blobs are passed around in the form Pillow uses for JPEG: b"Exif\\0\\0" + a TIFF structure.
"""
from __future__ import annotations

import html
import logging
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

EXIF_PREFIX = b"Exif\x00\x00"
TAG_ORIENTATION = 274
TAG_EXIF_IFD = 34665
TAG_GPS_IFD = 34853
TAG_INTEROP_IFD = 40965
POINTER_TAGS = (TAG_EXIF_IFD, TAG_GPS_IFD, TAG_INTEROP_IFD)
# Descriptive IFD0 tags worth carrying between files. Structural tags (size, strips, compression...) must
# never travel: they describe the old file's pixel layout, not the photo.
IFD0_KEEP = frozenset({270, 271, 272, 274, 282, 283, 296, 305, 306, 315, 318, 319, 33432, 18246, 18249,
                       40091, 40092, 40093, 40094, 40095})
# Placeholder tag codes written by tifffile (which refuses the real pointer tags) and renamed afterwards.
# Each sits directly below its real code, so renaming keeps the entries sorted.
PLACEHOLDER = {TAG_EXIF_IFD: TAG_EXIF_IFD - 1, TAG_GPS_IFD: TAG_GPS_IFD - 1}

_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_COMPONENT = {3: 2, 8: 2, 4: 4, 9: 4, 11: 4, 13: 4, 5: 4, 10: 4, 12: 8}  # byte-swap unit per type
_MAX_ENTRIES = 1000
# Largest metadata block (EXIF value, XMP packet, ICC profile) read or inflated: real ones stay far below
# (a JPEG segment holds 64 KB; large printer ICC profiles are a few MB), and a 1.6 MB PNG whose compressed
# XMP inflates to gigabytes is stopped here before the memory is taken. Larger blocks are left out.
MAX_METADATA_BYTES = 16 * 1024 * 1024

log = logging.getLogger(__name__)


class MetadataError(ValueError):
    """Malformed metadata; callers usually drop the metadata rather than the photo."""


@dataclass
class Entry:
    """One IFD entry with its value bytes in little-endian order; `sub` holds a pointed-to IFD."""
    tag: int
    type: int
    count: int
    data: bytes
    sub: list[Entry] | None = None


ReadAt = Callable[[int, int], bytes]


def _reader(buf: bytes) -> ReadAt:
    return lambda off, n: buf[off:off + n]


def file_reader(f: BinaryIO) -> ReadAt:
    def read_at(off: int, n: int) -> bytes:
        f.seek(off)
        return f.read(n)
    return read_at


def _endian(head: bytes) -> str:
    if head[:4] == b"II*\x00":
        return "<"
    if head[:4] == b"MM\x00*":
        return ">"
    raise MetadataError("not a TIFF/EXIF structure")


def _to_le(data: bytes, typ: int, endian: str) -> bytes:
    unit = _COMPONENT.get(typ)
    if endian == "<" or unit is None or not data:
        return data
    return np.frombuffer(data, dtype=f">u{unit}").astype(f"<u{unit}").tobytes()


def parse_ifd(read_at: ReadAt, offset: int, endian: str, depth: int = 0) -> list[Entry]:
    """Read one IFD (and the Exif/GPS/Interop IFDs it points to) into little-endian entries."""
    if depth > 3:
        raise MetadataError("IFD nesting too deep")
    (n,) = struct.unpack(endian + "H", _exact(read_at(offset, 2), 2))
    if n > _MAX_ENTRIES:
        raise MetadataError("implausible IFD entry count")
    raw = _exact(read_at(offset + 2, 12 * n), 12 * n)
    entries = []
    for i in range(n):
        tag, typ, count = struct.unpack(endian + "HHI", raw[12 * i:12 * i + 8])
        size = _TYPE_SIZE.get(typ)
        if size is None:
            continue  # unknown type: cannot be copied safely
        nbytes = size * count
        if nbytes > MAX_METADATA_BYTES:
            raise MetadataError(f"an EXIF value of {nbytes} bytes (more than {MAX_METADATA_BYTES >> 20} MB)")
        field = raw[12 * i + 8:12 * i + 12]
        if nbytes <= 4:
            data = field[:nbytes]
        else:
            (ptr,) = struct.unpack(endian + "I", field)
            data = _exact(read_at(ptr, nbytes), nbytes)
        entry = Entry(tag, typ, count, _to_le(data, typ, endian))
        if tag in POINTER_TAGS and typ in (4, 13) and count == 1:
            (ptr,) = struct.unpack("<I", entry.data)
            entry.sub = parse_ifd(read_at, ptr, endian, depth + 1)
        entries.append(entry)
    return entries


def _exact(data: bytes, n: int) -> bytes:
    if len(data) != n:
        raise MetadataError("metadata runs past the end of the data")
    return data


def build_ifd(entries: list[Entry], offset: int) -> bytes:
    """Serialise entries (sorted by tag) as a little-endian IFD that will sit at `offset` in the file."""
    entries = sorted(entries, key=lambda e: e.tag)
    table = struct.pack("<H", len(entries))
    data_off = offset + 2 + 12 * len(entries) + 4
    extra = b""
    fields = []
    for e in entries:
        if e.sub is not None:
            blob = build_ifd(e.sub, data_off + len(extra))
            fields.append(struct.pack("<HHII", e.tag, 4, 1, data_off + len(extra)))
            extra += blob
        elif len(e.data) <= 4:
            fields.append(struct.pack("<HHI", e.tag, e.type, e.count) + e.data.ljust(4, b"\0"))
        else:
            fields.append(struct.pack("<HHII", e.tag, e.type, e.count, data_off + len(extra)))
            extra += e.data
        if len(extra) % 2:
            extra += b"\0"  # values start on word boundaries
    return table + b"".join(fields) + b"\0\0\0\0" + extra


def parse_exif(exif: bytes) -> list[Entry]:
    """IFD0 entries (with sub-IFDs) of an EXIF blob."""
    tiff = exif[len(EXIF_PREFIX):] if exif.startswith(EXIF_PREFIX) else exif
    endian = _endian(tiff)
    (ifd0,) = struct.unpack(endian + "I", _exact(tiff[4:8], 4))
    return parse_ifd(_reader(tiff), ifd0, endian)


def build_exif(entries: list[Entry]) -> bytes:
    return EXIF_PREFIX + b"II*\x00" + struct.pack("<I", 8) + build_ifd(entries, 8)


def normalise_exif(exif: bytes | None) -> bytes | None:
    """Return the blob with the b"Exif\\0\\0" prefix, or None if it is empty or not EXIF at all."""
    if not exif:
        return None
    if not exif.startswith(EXIF_PREFIX):
        exif = EXIF_PREFIX + exif
    try:
        _endian(exif[len(EXIF_PREFIX):])
    except MetadataError:
        return None
    return exif


def _ifd0_field(exif: bytes, tag: int) -> tuple[str, int, int, int] | None:
    """(endian, type, count, byte position of the value field) of an IFD0 tag, or None."""
    base = len(EXIF_PREFIX)
    endian = _endian(exif[base:])
    (ifd0,) = struct.unpack(endian + "I", exif[base + 4:base + 8])
    pos = base + ifd0
    (n,) = struct.unpack(endian + "H", _exact(exif[pos:pos + 2], 2))
    for i in range(min(n, _MAX_ENTRIES)):
        p = pos + 2 + 12 * i
        t, typ, count = struct.unpack(endian + "HHI", _exact(exif[p:p + 8], 8))
        if t == tag:
            return endian, typ, count, p + 8
    return None


def exif_orientation(exif: bytes | None) -> int:
    """The EXIF orientation (1..8); 1 when absent or unreadable."""
    if not exif:
        return 1
    try:
        found = _ifd0_field(exif, TAG_ORIENTATION)
    except (MetadataError, struct.error):
        return 1
    if found is None or found[1] != 3:
        return 1
    endian, _, _, pos = found
    (value,) = struct.unpack(endian + "H", exif[pos:pos + 2])
    return value if 1 <= value <= 8 else 1


def exif_with_orientation(exif: bytes, value: int = 1) -> bytes:
    """Patch the orientation in place, so every other byte of the camera's EXIF stays as it was."""
    try:
        found = _ifd0_field(exif, TAG_ORIENTATION)
    except (MetadataError, struct.error):
        return exif
    if found is None or found[1] != 3:
        return exif
    endian, _, _, pos = found
    return exif[:pos] + struct.pack(endian + "H", value) + exif[pos + 2:]


def exif_from_tiff_file(f: BinaryIO) -> bytes | None:
    """A standalone EXIF blob from a TIFF-structured file (TIFF, DNG, NEF...): descriptive IFD0 tags and
    the Exif/GPS sub-IFDs, none of the pixel-layout tags."""
    read_at = file_reader(f)
    head = read_at(0, 8)
    try:
        endian = _raw_endian(head)
        (ifd0,) = struct.unpack(endian + "I", head[4:8])
        entries = parse_ifd(read_at, ifd0, endian)
    except (MetadataError, struct.error):
        return None
    keep = [e for e in entries if e.tag in IFD0_KEEP or (e.sub is not None and e.tag != TAG_INTEROP_IFD)]
    return build_exif(keep) if keep else None


def _raw_endian(head: bytes) -> str:
    """Byte order of a TIFF-like file; camera RAW variants use other magic numbers than 42 (Olympus ORF
    'RO'/'RS', Panasonic RW2 0x55) but the same IFD structure."""
    endian = {b"II": "<", b"MM": ">"}.get(head[:2])
    if endian is None or len(head) < 8:
        raise MetadataError("not a TIFF-structured file")
    (magic,) = struct.unpack(endian + "H", head[2:4])
    if magic not in (42, 0x4F52, 0x5352, 0x55):
        raise MetadataError("not a TIFF-structured file")
    return endian


def tiff_extratags(exif: bytes) -> list[tuple[int, int, None, bytes, bool]]:
    """tifffile `extratags` for the descriptive IFD0 tags of an EXIF blob, plus placeholders for the
    sub-IFD pointers that `append_exif_subifds` fills in after tifffile has written the file."""
    tags = []
    for e in parse_exif(exif):
        if e.sub is not None and e.tag in PLACEHOLDER:
            tags.append((PLACEHOLDER[e.tag], 4, None, struct.pack("<I", 0), True))
        elif e.tag in IFD0_KEEP and e.tag not in (282, 283, 296) and e.data:
            data = struct.pack("<H", 1) if e.tag == TAG_ORIENTATION else e.data
            tags.append((e.tag, e.type, None, data, True))
    return tags


def tiff_resolution(exif: bytes | None) -> tuple[tuple[int, int], tuple[int, int], int] | None:
    """((xnum, xden), (ynum, yden), unit) from EXIF IFD0, for tifffile's resolution arguments."""
    if not exif:
        return None
    try:
        by_tag = {e.tag: e for e in parse_exif(exif)}
    except (MetadataError, struct.error):
        return None
    x, y, unit = by_tag.get(282), by_tag.get(283), by_tag.get(296)
    if x is None or y is None or x.type != 5 or y.type != 5:
        return None
    xr = struct.unpack("<II", x.data[:8])
    yr = struct.unpack("<II", y.data[:8])
    u = struct.unpack("<H", unit.data[:2])[0] if unit is not None and unit.type == 3 else 2
    if 0 in (xr[1], yr[1]) or u not in (1, 2, 3):
        return None
    return xr, yr, u


def append_exif_subifds(f: BinaryIO, exif: bytes) -> None:
    """Append the Exif/GPS sub-IFDs to a little-endian classic TIFF written with `tiff_extratags`, and turn
    the placeholder entries into real pointers to them."""
    subs = {e.tag: e.sub for e in parse_exif(exif) if e.sub is not None and e.tag in PLACEHOLDER}
    if not subs:
        return
    read_at = file_reader(f)
    head = read_at(0, 8)
    if head[:4] != b"II*\x00":
        raise MetadataError("expected a little-endian classic TIFF")
    (ifd0,) = struct.unpack("<I", head[4:8])
    (n,) = struct.unpack("<H", read_at(ifd0, 2))
    for i in range(n):
        pos = ifd0 + 2 + 12 * i
        tag = struct.unpack("<H", read_at(pos, 2))[0]
        real = next((t for t, p in PLACEHOLDER.items() if p == tag and t in subs), None)
        if real is None:
            continue
        f.seek(0, 2)
        end = f.tell()
        if end % 2:
            f.write(b"\0")
            end += 1
        f.write(build_ifd(subs[real], end))
        f.seek(pos)
        f.write(struct.pack("<HHII", real, 4, 1, end))


# ---------------------------------------------------------------------------------------------- PNG

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = b"XML:com.adobe.xmp"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_chunks(png: bytes) -> list[tuple[bytes, int, int]]:
    """(type, data start, data length) of every chunk; raises MetadataError if the file is cut short."""
    if not png.startswith(PNG_SIGNATURE):
        raise MetadataError("not a PNG file")
    out, pos = [], len(PNG_SIGNATURE)
    while True:
        if pos + 12 > len(png):
            raise MetadataError("the PNG file is truncated (no IEND chunk)")
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if pos + 12 + length > len(png):
            raise MetadataError("the PNG file is truncated")
        out.append((kind, pos + 8, length))
        pos += 12 + length
        if kind == b"IEND":
            return out


def png_metadata(png: bytes, source: str = "") -> tuple[bytes | None, bytes | None, bytes | None]:
    """(exif, icc, xmp) from PNG chunks, wherever they sit (also after the pixel data); compressed blocks are
    inflated only up to MAX_METADATA_BYTES (`source` names the file in the warning when one is left out)."""
    exif = icc = xmp = None
    for kind, start, length in png_chunks(png):
        data = png[start:start + length]
        if kind == b"eXIf":
            exif = normalise_exif(data)
        elif kind == b"iCCP":
            name_end = data.find(b"\0")
            icc = inflate_bounded(data[name_end + 2:], "ICC profile", source) if name_end >= 0 else None
        elif kind == b"iTXt" and data.startswith(XMP_KEYWORD + b"\0"):
            xmp = _itxt_text(data[len(XMP_KEYWORD) + 1:], source)
    return exif, icc, xmp


def _itxt_text(rest: bytes, source: str = "") -> bytes | None:
    compressed = rest[:1] == b"\x01"
    parts = rest[2:].split(b"\0", 2)  # language tag, translated keyword, text
    if len(parts) != 3:
        return None
    return inflate_bounded(parts[2], "XMP packet", source) if compressed else parts[2]


def inflate_bounded(data: bytes, what: str, source: str = "", limit: int = MAX_METADATA_BYTES) -> bytes | None:
    """zlib data inflated to at most `limit` bytes; None (with a warning) when it is damaged or would grow
    past the limit: the block is left out, the photo is kept. Memory stays at `limit`, whatever was declared."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        log.warning("%sa damaged %s was left out", f"{source}: " if source else "", what)
        return None
    if len(out) > limit:
        log.warning("%sits %s inflates to more than %d MB; it was left out", f"{source}: " if source else "",
                    what, limit >> 20)
        return None
    return out


def png_with_metadata(png: bytes, exif: bytes | None, icc: bytes | None, xmp: bytes | None) -> bytes:
    """Insert eXIf/iCCP/iTXt(XMP) chunks right after IHDR, replacing any the encoder wrote."""
    chunks = png_chunks(png)
    kind, start, length = chunks[0]
    if kind != b"IHDR":
        raise MetadataError("PNG does not start with IHDR")
    extra = b""
    if icc:
        extra += png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc))
    if exif:
        extra += png_chunk(b"eXIf", exif[len(EXIF_PREFIX):] if exif.startswith(EXIF_PREFIX) else exif)
    if xmp:
        extra += png_chunk(b"iTXt", XMP_KEYWORD + b"\0\0\0\0\0" + xmp)
    drop = {b"eXIf", b"iCCP", b"sRGB"} if icc else {b"eXIf"}
    body = [png[s - 8:s + n + 4] for k, s, n in chunks[1:]
            if k not in drop and not (k == b"iTXt" and png[s:s + len(XMP_KEYWORD) + 1] == XMP_KEYWORD + b"\0")]
    return PNG_SIGNATURE + png[start - 8:start + length + 4] + extra + b"".join(body)


def encode_png16(arr: np.ndarray) -> bytes:
    """A plain 16-bit PNG encoder for grey+alpha, which OpenCV cannot write (it takes 1, 3 or 4 channels).
    Uses the 'Sub' filter on every row: simple, vectorised and usually within a few % of adaptive filters."""
    h, w, c = arr.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = np.ascontiguousarray(arr.astype(">u2")).view(np.uint8).reshape(h, w * c * 2)
    bpp = c * 2
    filtered = np.empty((h, w * c * 2 + 1), np.uint8)
    filtered[:, 0] = 1
    filtered[:, 1:bpp + 1] = rows[:, :bpp]
    np.subtract(rows[:, bpp:], rows[:, :-bpp], out=filtered[:, bpp + 1:])
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(filtered.tobytes(), 3))
            + png_chunk(b"IEND", b""))


def icc_colour_space(icc: bytes | None) -> str:
    """The data colour space of an ICC profile ('RGB', 'GRAY', 'CMYK', ...), '' if unknown."""
    if not icc or len(icc) < 20:
        return ""
    return icc[16:20].decode("ascii", "replace").strip()


XMP_NOTE_NS = "https://photo-denoiser.invalid/ns/1.0/"  # our namespace: fields no other tool defines
_XMP_NOTE = re.compile(rb'<rdf:Description rdf:about="" xmlns:pdn="[^"]*"[^>]*/>')


def xmp_with_note(xmp: bytes | None, fields: dict[str, str]) -> bytes:
    """The photo's XMP with one extra rdf:Description of `fields` (pdn:Name="value"), so a saved file says
    how it was made (model, strength). The existing packet is kept byte for byte; only an earlier note of
    ours is replaced. Without XMP a new minimal packet is made; a packet with no rdf:RDF to hold the note is
    returned unchanged (the photo's own metadata matters more than our note)."""
    attrs = "".join(f' pdn:{k}="{html.escape(str(v), quote=True)}"' for k, v in fields.items() if k.isalnum())
    note = f'<rdf:Description rdf:about="" xmlns:pdn="{XMP_NOTE_NS}"{attrs}/>'.encode()
    if xmp:
        xmp = _XMP_NOTE.sub(b"", xmp)
        rdf = re.search(rb"<rdf:RDF\b[^>]*>", xmp)
        return xmp[:rdf.end()] + note + xmp[rdf.end():] if rdf else xmp
    return (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            + note + b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def xmp_that_fits(xmp: bytes | None, limit: int) -> tuple[bytes | None, str]:
    """The XMP packet if it fits in `limit` bytes; else a packet with only this tool's note (how the photo
    was made), or None, and the warning to give: the photo is saved either way, never refused after the work."""
    if not xmp or len(xmp) <= limit:
        return xmp, ""
    found = _XMP_NOTE.search(xmp)
    note = None
    blank = _XMP_NOTE.search(xmp_with_note(None, {})) if found else None
    if found and blank:
        note = blank.string.replace(blank.group(0), found.group(0))
    kept = note if note is not None and len(note) <= limit else None
    return kept, (f"its XMP metadata ({len(xmp) // 1024} KB) does not fit in the format's {limit // 1024} KB; "
                  + ("only the denoiser's note is kept" if kept else "it is left out"))
