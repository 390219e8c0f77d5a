"""Downloading large files safely: resumable HTTP transfers with a checksum, and archive extraction
that refuses anything that could write outside its destination.

``download_file`` writes to ``<dest>.part`` and, when the connection drops, asks the server for the
rest with an HTTP ``Range`` request instead of starting over; it checks an MD5 before the file
takes its final name. ``safe_extract`` looks at every member of a tar archive first and refuses
the whole archive if any member is an absolute path, climbs out with ``../``, is a link or a
device: nothing at all is written in that case.
"""

from __future__ import annotations

import http.client
import os
import shutil
import ssl
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from .files import file_hash

__all__ = ["download_file", "UnsafeArchiveError", "safe_extract", "md5_of"]

# --- downloading with resume and a checksum ---------------------------------------------------------

def md5_of(path: Path) -> str:
    return file_hash(path, "md5")


def _content_range(value: str | None) -> tuple[int, int | None]:
    """Parse ``bytes START-END/TOTAL`` into ``(START, TOTAL)``; TOTAL may be ``*`` (unknown)."""
    if not value or not value.startswith("bytes "):
        return -1, None
    span, _, total = value[len("bytes "):].partition("/")
    start = span.partition("-")[0]
    return (int(start) if start.isdigit() else -1), (int(total) if total.isdigit() else None)


def _fetch_once(url: str, part: Path, *, progress: bool, chunk_size: int, timeout: float) -> None:
    """One request: append to ``part`` from its current size; raise if the transfer is cut short."""
    from tqdm.auto import tqdm  # imported here so that `import engine.datasets` stays cheap

    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "petbreeds"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        # 416: the Range starts at or past the end, so the .part is whole, unless it is too long.
        if e.code == 416 and offset:
            total = _content_range(e.headers.get("Content-Range"))[1]  # "bytes */TOTAL"
            if total is not None and total != offset:
                part.unlink()
                raise http.client.HTTPException(f"{part} is longer than the file; starting over") from e
            return
        raise
    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        start, total = _content_range(response.headers.get("Content-Range"))
        if response.status == 206 and start != offset:
            part.unlink()
            raise http.client.HTTPException(f"asked for bytes {offset}-, got {start}-; starting over")
        if response.status == 206:
            mode, total = "ab", total or (offset + length if length is not None else None)
        else:  # 200: the server ignored our Range and sends the whole file, so start over
            mode, offset, total = "wb", 0, length
        received = 0
        with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                         desc=part.name.removesuffix(".part"),
                                         disable=not progress) as bar:
            while chunk := response.read(chunk_size):
                f.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    # http.client returns b"" when the peer closes early instead of raising, so check ourselves.
    if length is not None and received < length:
        raise http.client.IncompleteRead(b"", length - received)


def download_file(url: str, dest: str | os.PathLike, *, md5: str | None = None, retries: int = 5,
                  progress: bool = True, chunk_size: int = 1 << 20, timeout: float = 60.0,
                  retry_wait: float = 1.0) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming after drops, checking ``md5``.

    Args:
        url: where to download from.
        dest: the final file; it only appears once the download is whole (and its MD5 matches).
        md5: expected hex MD5 of the file, or None to skip the check.
        retries: how many times to retry (resuming from what is on disk) after a dropped connection.
        progress: show a tqdm progress bar.
        chunk_size: bytes read per step.
        timeout: seconds to wait on a silent socket before treating the connection as dropped.
        retry_wait: seconds before the first retry; doubled after each further failure (max 30).
    """
    dest = Path(dest)
    if dest.is_file() and (md5 is None or md5_of(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, progress=progress, chunk_size=chunk_size, timeout=timeout)
            break
        except urllib.error.HTTPError as e:
            if 400 <= e.code < 500 and e.code not in (408, 429):  # retrying cannot fix these
                raise ConnectionError(
                    f"download of {url} failed: HTTP {e.code} {e.reason}. Check the URL (or the "
                    f"PETS_URL / PETS_ANNOTATIONS_URL mirror you set)."
                ) from e
            error: Exception = e
        except (http.client.HTTPException, ConnectionError, urllib.error.URLError, TimeoutError, ssl.SSLError) as e:
            error = e
        if attempt == retries:
            kept = f" The partial file {part} is kept, so running again resumes." if part.exists() else ""
            raise ConnectionError(
                f"download of {url} failed after {retries + 1} attempts ({error!r}). Check the "
                f"network connection, or set PETS_URL (PETS_ANNOTATIONS_URL) to a mirror.{kept}"
            ) from error
        time.sleep(min(retry_wait * 2**attempt, 30.0))
    if md5 is not None:
        actual = md5_of(part)
        if actual != md5:
            part.unlink()
            raise ValueError(
                f"checksum mismatch for {dest.name} from {url}: expected MD5 {md5}, got {actual}. "
                f"The partial download was deleted; run again to retry, or check that the URL is right."
            )
    os.replace(part, dest)
    return dest


# --- extracting without trusting the archive --------------------------------------------------------

class UnsafeArchiveError(ValueError):
    """An archive member that could write outside the destination or is not a plain file/folder."""


def _why_unsafe(member: tarfile.TarInfo, root: Path) -> str | None:
    name = member.name
    if os.path.isabs(name) or name.startswith(("/", "\\")) or name[1:2] == ":":  # C: too
        return "it has an absolute path"
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        return f"it resolves outside the destination {root}"
    if target == root and not member.isdir():
        return "it would replace the destination folder itself"
    if member.issym() or member.islnk():
        kind = "symlink" if member.issym() else "hardlink"
        return f"it is a {kind} (to {member.linkname!r}) and links are not allowed"
    if member.ischr() or member.isblk():
        return "it is a device file"
    if member.isfifo():
        return "it is a FIFO"
    if not (member.isfile() or member.isdir()):
        return f"it is not a regular file or folder (tar type {member.type!r})"
    return None


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Check every member of a .tar/.tar.gz, then extract; returns the regular files written."""
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise FileNotFoundError(f"safe_extract: archive {archive} does not exist; download it first.")
    corrupt = (tarfile.TarError, EOFError, zlib.error)
    try:
        tar = tarfile.open(archive, "r:*")
    except corrupt as e:
        raise ValueError(f"{archive} is not a .tar or .tar.gz archive that tarfile can read. Delete "
                         f"it and download again.") from e
    with tar:
        try:
            members = tar.getmembers()  # reads the whole index: corruption shows before any write
        except corrupt as e:
            raise ValueError(f"{archive} is corrupt ({e!r}). Delete it and download again.") from e
        root = dest.resolve()
        for member in members:  # validate all first: one bad member means nothing is written
            why = _why_unsafe(member, root)
            if why:
                raise UnsafeArchiveError(
                    f"refusing to extract {archive}: member {member.name!r} is unsafe because {why}. "
                    f"Nothing was extracted; get the archive from a trusted source."
                )
        written = []
        for member in members:
            target = root / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            # We copy the bytes ourselves: no owners, permissions or times come from the archive.
            try:
                with tar.extractfile(member) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
            except corrupt as e:
                raise ValueError(f"{archive} is corrupt at {member.name!r} ({e!r}). Delete it and "
                                 f"download again.") from e
            written.append(target)
    return written
