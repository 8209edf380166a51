"""Input paths as text and as output-file names: any byte string a file system allows survives, none crashes.

On POSIX a file name is bytes; Python decodes the bytes that are not UTF-8 as lone surrogates (surrogateescape),
which a UTF-8 results file, CSV or terminal cannot encode. Records therefore carry `path_text`: the path itself
when it is valid Unicode, else its bytes with each undecodable one written as ``\\xNN``.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import re
from pathlib import Path
from typing import Any

NAME_CHARS = 48  # of the input's stem in an output name: 48 chars x 4 UTF-8 bytes + suffixes stay under 255 bytes


def text(s: str) -> str:
    """``s`` when UTF-8 can encode it; otherwise surrogate-escaped bytes as ``\\xNN`` (other lone surrogates as
    ``\\udNNN``)."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        pass
    try:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


def path_text(path: str | os.PathLike) -> str:
    """The path as it goes into records, the CSV and messages (see `text`)."""
    return text(os.fsdecode(path))


def clean(value: Any) -> Any:
    """A record with every string made encodable (paths can also hide in error details)."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def absolute(path: Path) -> Path:
    """Resolved path; the plain absolute path when resolving fails (symlink loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # Python < 3.13 raises RuntimeError on a loop
        return Path(os.path.abspath(path))


def source_tag(path: Path) -> str:
    """8 hex digits of the absolute path: tells inputs with the same name (a/face.jpg, b/face.jpg) apart, and is the
    same on every run."""
    return hashlib.sha1(os.fsencode(absolute(path))).hexdigest()[:8]


def output_name(path: Path, tail: str) -> str:
    """File name for an output derived from input ``path``: output_name(Path('a/face.jpg'), '_face0.png') ->
    'face_face0-1a2b3c4d.png'. The stem is made file-name safe and short; the tag makes the name unique."""
    stem = re.sub(r"[^\w.-]+", "_", path_text(path.stem))[:NAME_CHARS].strip("._") or "input"
    base, ext = os.path.splitext(tail)
    return f"{stem}{base}-{source_tag(path)}{ext}"


def unreadable(path: Path, err: OSError) -> dict[str, str]:
    """reason / detail / fix of an input that cannot even be stat'ed (for `records.error_record`)."""
    detail = text(f"{err.strerror or err}: {path_text(path)}")
    if err.errno == errno.ELOOP:
        return {"reason": "symlink loop", "detail": detail, "fix": "point the link at a real file, or remove it"}
    if err.errno == errno.ENOENT and glob.has_magic(os.fsdecode(path)):
        return {"reason": "no file matches the pattern", "detail": detail, "fix": "check the pattern"}
    if err.errno == errno.ENOENT:
        what = "broken symlink" if path.is_symlink() else "no such file or folder"
        return {"reason": "file not found", "detail": f"{what}: {path_text(path)}", "fix": "check the path"}
    if err.errno == errno.EACCES:
        return {"reason": "permission denied", "detail": detail, "fix": "check the file's permissions"}
    return {"reason": "file not readable", "detail": detail, "fix": "check the path and permissions"}
