"""The media store: MP4s and thumbnails under keys like ``videos/2026/11/25/vid_x.mp4``.

A folder on this machine or an object-storage root (see :mod:`kinora.stores.objects`). Writes
never leave half a file under a key: locally they go through a temporary name and a rename,
on object storage one PUT makes the object appear whole.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from kinora.stores.objects import Place, place


class MediaStore:
    """Files under ``root`` (a folder or an object-storage URL), addressed by key."""

    def __init__(self, root: Path | str | Place) -> None:
        self.place = root if isinstance(root, Place) else place(root)

    @property
    def local(self) -> bool:
        return self.place.local

    @property
    def root(self) -> Path | str:
        return Path(self.place.root) if self.local else str(self.place)

    def _key(self, key: str) -> str:
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(p in ("..", ".") for p in parts) or "\\" in key:
            raise ValueError(f"media key {key!r} leaves the media store")
        return self.place.path(key)

    def path(self, key: str) -> Path:
        """The local file under ``key`` (a local store only; use :meth:`local_file` anywhere)."""
        if not self.local:
            raise ValueError(f"the media store at {self.place} is not a local folder; use local_file({key!r})")
        p = Path(self._key(key)).resolve()
        if Path(self.place.root).resolve() not in p.parents:
            raise ValueError(f"media key {key!r} leaves the media store")
        return p

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        """A local path holding the file under ``key``: the file itself locally, a temporary
        download from object storage (removed afterwards)."""
        if self.local:
            yield self.path(key)
            return
        with tempfile.TemporaryDirectory(prefix="kinora-media-") as tmp:
            target = Path(tmp) / PurePosixPath(key).name
            self.place.fs.get_file(self._key(key), str(target))
            yield target

    def put_file(self, src: Path, key: str) -> str:
        if not self.local:
            self.place.fs.put_file(str(src), self._key(key))
            return self.place.url(self._key(key))
        dst = self.path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        return str(dst)

    def put_bytes(self, data: bytes, key: str) -> str:
        if not self.local:
            self.place.fs.pipe_file(self._key(key), data)
            return self.place.url(self._key(key))
        dst = self.path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, dst)
        return str(dst)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file() if self.local else self.place.fs.isfile(self._key(key))

    def size(self, key: str) -> int:
        """Bytes under ``key``; FileNotFoundError when there is none."""
        return self.path(key).stat().st_size if self.local else int(self.place.fs.info(self._key(key))["size"])

    def get_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes() if self.local else self.place.fs.cat_file(self._key(key))

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start`` up to (not including) ``end`` of the file under ``key``."""
        if self.local:
            with self.path(key).open("rb") as f:
                f.seek(start)
                return f.read(end - start)
        return self.place.fs.cat_file(self._key(key), start=start, end=end)

    def delete(self, key: str) -> bool:
        """Remove the file under ``key``; False when there was none."""
        try:
            if self.local:
                self.path(key).unlink()
                return True
            if not self.exists(key):  # S3 deletes are idempotent: ask first
                return False
            self.place.fs.rm_file(self._key(key))
            return True
        except FileNotFoundError:
            return False
