"""What a body really is, whatever its Content-Type says: binary is refused before extraction.

A server that labels a PDF, an image or random bytes `text/html` must not get
them indexed as text, so the first bytes are checked against known file
signatures and the share of control characters.
"""

from __future__ import annotations

#: File signatures (at offset 0) of formats that are never a web page's text.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x89PNG", "a PNG image"),
    (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x1f\x8b", "gzip data"), (b"\x7fELF", "an executable"), (b"MZ\x90\x00", "an executable"),
    (b"OggS", "an Ogg file"), (b"RIFF", "a RIFF (audio/video) file"), (b"ID3", "an MP3 file"),
    (b"\x1a\x45\xdf\xa3", "a WebM/Matroska video"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"), (b"\xd0\xcf\x11\xe0", "an Office document"), (b"wOFF", "a web font"),
    (b"wOF2", "a web font"), (b"BZh", "bzip2 data"), (b"\xfd7zXZ", "xz data"),
)
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v\x1b")
#: Above this share of control bytes in the first 8 KiB, a body is binary (text has ~0).
MAX_CONTROL_SHARE = 0.05


def binary_reason(body: bytes) -> str:
    """Why `body` is not text ("" when it looks like text)."""
    head = body[:8192]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a BOM: text, NULs and all
        return ""
    stripped = head.lstrip()
    for magic, name in _MAGIC:
        if stripped.startswith(magic):
            return f"binary content ({name}), not a text page"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "binary content (an MP4 video), not a text page"
    if not head:
        return ""
    controls = sum(1 for b in head if (b < 0x20 and b not in _TEXT_CONTROLS) or b == 0x7F)
    if controls / len(head) > MAX_CONTROL_SHARE:
        return f"binary content ({controls / len(head):.0%} control bytes), not a text page"
    return ""
