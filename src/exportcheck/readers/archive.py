"""Bounded, read-only access to torch's zip archives: member names checked, sizes capped."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from exportcheck.errors import UnreadableArtifactError

MAX_MEMBERS = 200_000
# Weights are stored uncompressed, so a real archive inflates to about its own size; code and
# JSON compress 5-10x. A declared total above this ratio (plus slack for tiny files) is a bomb.
MAX_INFLATION_RATIO = 50
INFLATION_SLACK_BYTES = 64 << 20
MAX_TOTAL_BYTES = 64 << 30
# Only code, pickles and program JSON are ever read into memory, never weights.
MAX_READ_BYTES = 512 << 20

NATIVE_SUFFIXES = (".so", ".dll", ".dylib", ".pyd")


@dataclass(frozen=True)
class UnsafeMember:
    """A member a loader would act on dangerously: a native library, a link, a path escape."""

    name: str
    reason: str


_ZIP_ERRORS = (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError)
_LOCAL_HEADER = b"PK\x03\x04"
_LOCAL_HEADER_SIZE = 30


class Archive:
    """An opened torch zip archive. Use as a context manager; every read is size-bounded."""

    def __init__(
        self,
        path: str,
        error_prefix: str,
        opened: zipfile.ZipFile | None = None,
        *,
        source: IO[bytes] | None = None,
        source_size: int | None = None,
    ) -> None:
        """`opened`: the same file already opened as a zip (by kind detection); it is closed
        with the archive. `source` and `source_size`: for an archive nested in a member of
        another, the stream it is read from (closed with it) and the member's size."""
        self.path = path
        self.error_prefix = error_prefix
        self._source = source
        if opened is not None:
            self._zip = opened
        else:
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as error:
                raise self.error(f"not a zip archive ({error})") from None
        try:
            size = source_size if source_size is not None else os.path.getsize(path)
            self._infos = self._checked_infos(size)
        except BaseException:
            self.close()
            raise
        self.names = tuple(info.filename for info in self._infos)
        self._by_name = {info.filename: info for info in self._infos}

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()
        if self._source is not None:
            self._source.close()

    def nested(self, name: str) -> Archive:
        """A member that is itself a zip (torch.save writes one), opened with the same bounds
        as this archive: its bytes are streamed from this file, never held whole."""
        info = self._by_name.get(name)
        if info is None:
            raise self.error(f"no member {name!r}")
        prefix = f"{self.error_prefix}: in member {name!r}"
        try:
            stream = self._member_stream(info)
        except _ZIP_ERRORS + (RuntimeError,) as error:
            raise self.error(f"member {name!r} cannot be read ({error})") from None
        try:
            inner = zipfile.ZipFile(stream)
        except _ZIP_ERRORS as error:
            stream.close()
            raise UnreadableArtifactError(
                f"{prefix}: not a zip archive ({error})", subject=self.path
            ) from None
        return Archive(self.path, prefix, inner, source=stream, source_size=info.file_size)

    def _member_stream(self, info: zipfile.ZipInfo) -> IO[bytes]:
        if info.compress_type != zipfile.ZIP_STORED:
            # zipfile inflates as it reads, bounded by the declared size; a backward seek
            # starts over, so a nested archive's reads are few (see the callers).
            return self._zip.open(info)
        # A stored member is a byte range of the file: read in place, seeks are free.
        handle = open(self.path, "rb")  # closed with the nested archive
        try:
            handle.seek(info.header_offset)
            header = handle.read(_LOCAL_HEADER_SIZE)
            if len(header) < _LOCAL_HEADER_SIZE or not header.startswith(_LOCAL_HEADER):
                raise zipfile.BadZipFile("bad local file header")
            start = (
                info.header_offset
                + _LOCAL_HEADER_SIZE
                + int.from_bytes(header[26:28], "little")
                + int.from_bytes(header[28:30], "little")
            )
            return _ByteRange(handle, start, info.compress_size)
        except BaseException:
            handle.close()
            raise

    def error(self, cause: str) -> UnreadableArtifactError:
        return UnreadableArtifactError(f"{self.error_prefix}: {cause}", subject=self.path)

    def _checked_infos(self, file_size: int) -> list[zipfile.ZipInfo]:
        infos = self._zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise self.error(f"{len(infos)} archive members (more than {MAX_MEMBERS})")
        total = 0
        for info in infos:
            # zipfile cuts a name at its first NUL; the name as stored is `orig_filename`.
            check_member_name(info.orig_filename, self.error)
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                # torch's reader (miniz) inflates only these two; any other is a damaged file.
                raise self.error(
                    f"member {info.filename!r} uses compression method {info.compress_type}, "
                    "which torch archives never use"
                )
            total += info.file_size
        ceiling = min(MAX_TOTAL_BYTES, file_size * MAX_INFLATION_RATIO + INFLATION_SLACK_BYTES)
        if total > ceiling:
            raise self.error(
                f"members declare {total} bytes uncompressed from a {file_size}-byte file "
                f"(more than {ceiling}: a zip bomb?)"
            )
        return infos

    def find(self, suffix: str) -> list[str]:
        return [name for name in self.names if name.endswith(suffix)]

    def size(self, name: str) -> int:
        return self._by_name[name].file_size

    def head(self, name: str, count: int) -> bytes:
        """The first `count` bytes of a member (fewer if it is shorter)."""
        info = self._by_name.get(name)
        if info is None:
            raise self.error(f"no member {name!r}")
        try:
            with self._zip.open(info) as stream:
                return stream.read(count)
        except _ZIP_ERRORS + (RuntimeError,) as error:
            raise self.error(f"member {name!r} cannot be read ({error})") from None

    def read(self, name: str, limit: int = MAX_READ_BYTES) -> bytes:
        """A member's bytes; more than `limit` (declared or actually inflated) is refused."""
        info = self._by_name.get(name)
        if info is None:
            raise self.error(f"no member {name!r}")
        if info.file_size > limit:
            raise self.error(f"member {name!r} is {info.file_size} bytes (limit {limit})")
        try:
            with self._zip.open(info) as stream:
                # A header can understate the size: read one byte past it to notice.
                data = stream.read(limit + 1)
        except _ZIP_ERRORS as error:
            raise self.error(f"member {name!r} cannot be read ({error})") from None
        except RuntimeError as error:  # encrypted members
            raise self.error(f"member {name!r} cannot be read ({error})") from None
        if len(data) > limit:
            raise self.error(f"member {name!r} inflates past {limit} bytes")
        return data

    def unsafe_members(self) -> list[UnsafeMember]:
        """Members that are dangerous to a loader, not to this reader (it extracts nothing)."""
        found: list[UnsafeMember] = []
        for info in self._infos:
            name = info.filename
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                found.append(UnsafeMember(name, "a symbolic link; extracting it writes through it"))
            elif "\\" in name and ".." in name.split("\\"):
                found.append(UnsafeMember(name, "a Windows path that climbs out of its folder"))
            elif len(name) > 1 and name[1] == ":":
                found.append(UnsafeMember(name, "a Windows drive path"))
            elif name.lower().endswith(NATIVE_SUFFIXES):
                found.append(UnsafeMember(name, "a native library a loader may dlopen"))
            elif "/data/aotinductor/" in f"/{name}":
                found.append(UnsafeMember(name, "an AOTInductor package (compiled native code)"))
        return found


class _ByteRange(io.RawIOBase):
    """A read-only, seekable window onto `size` bytes of a file from `start`."""

    def __init__(self, handle: IO[bytes], start: int, size: int) -> None:
        super().__init__()
        self._handle = handle
        self._start = start
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = max(0, min(len(buffer), self._size - self._position))
        if count == 0:
            return 0
        self._handle.seek(self._start + self._position)
        data = self._handle.read(count)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        self._handle.close()
        super().close()


def check_member_name(name: str, make: Callable[[str], Exception]) -> None:
    """Refuses names no torch writer produces and an extracting loader would misplace."""
    if "\0" in name:
        raise make(f"member name {name!r} contains NUL")
    if name.startswith("/") or name.startswith("\\"):
        raise make(f"member name {name!r} is an absolute path")
    if ".." in name.split("/"):
        raise make(f"member name {name!r} climbs out of the archive folder ('..')")


def archive_root(names: tuple[str, ...] | list[str]) -> str:
    """The archive's top folder (`model/` in `model/code/...`), where torch puts everything."""
    for name in names:
        if "/" in name:
            return name.split("/", 1)[0] + "/"
    return ""
