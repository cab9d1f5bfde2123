"""Photos in and out: decoding (orientation, 8/16-bit, grey, RAW), metadata (EXIF, XMP, ICC), atomic saves."""
