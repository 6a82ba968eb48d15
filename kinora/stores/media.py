"""The media store: MP4s and thumbnails under keys like ``videos/2026/11/25/vid_x.mp4``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class MediaStore:
    """Files under ``root``; writes are atomic (copy to a temporary name, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root.resolve() not in p.parents:
            raise ValueError(f"media key {key!r} leaves the media store")
        return p

    def put_file(self, src: Path, key: str) -> Path:
        dst = self.path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        return dst

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def put_bytes(self, data: bytes, key: str) -> Path:
        dst = self.path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, dst)
        return dst

    def get_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def delete(self, key: str) -> bool:
        """Remove the file under ``key``; False when there was none."""
        try:
            self.path(key).unlink()
            return True
        except FileNotFoundError:
            return False
