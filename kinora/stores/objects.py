"""Where the lake and the media store live: a folder on this machine or an object-storage URL.

Both stores talk to their root through an fsspec file system, so the same code writes to
``/srv/kinora/lake`` on a laptop and to ``s3://bucket/lake`` on a cluster (s3fs; any
S3-compatible server through ``store.object_storage.endpoint_url``). The readers that do not
go through fsspec's Python file objects get what they need from here too: DuckDB gets the
file system registered on its connection (no httpfs extension to download), Polars gets the
matching ``storage_options`` for its own object-store reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from kinora.settings import ObjectStorageSettings, Settings


@dataclass(frozen=True)
class Place:
    """A root on a file system: ``fs`` and the root path on it (no protocol)."""

    fs: fsspec.AbstractFileSystem
    root: str
    protocol: str = "file"
    polars_options: dict[str, str] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return self.protocol == "file"

    def path(self, *parts: str) -> str:
        """The fs path of ``parts`` under the root."""
        return "/".join([self.root.rstrip("/"), *(p.strip("/") for p in parts if p)])

    def url(self, path: str) -> str:
        """What DuckDB and Polars read for an fs path: the plain path locally, ``s3://...`` remotely."""
        return path if self.local else f"{self.protocol}://{path}"

    def relative(self, path: str) -> str:
        """``path`` (an fs path or URL under the root) relative to the root."""
        path = path.split("://", 1)[-1]
        root = self.root.rstrip("/") + "/"
        if not path.startswith(root):
            raise ValueError(f"{path} is not under {self.root}")
        return path[len(root):]

    def attach(self, con) -> None:
        """Let a DuckDB connection read this place's URLs (a no-op for a local folder)."""
        if not self.local:
            con.execute("SET autoinstall_known_extensions = false")
            con.register_filesystem(self.fs)

    def __str__(self) -> str:
        return self.url(self.root)


def place(location: str | Path, storage: ObjectStorageSettings | None = None) -> Place:
    """Open a local folder (a path) or an object-storage root (``s3://bucket/prefix``)."""
    location = str(location)
    if "://" not in location or location.startswith("file://"):
        root = str(Path(location.removeprefix("file://")).resolve())
        return Place(fs=LocalFileSystem(), root=root)
    protocol, rest = location.split("://", 1)
    storage = storage or ObjectStorageSettings()
    if protocol not in ("s3", "s3a"):
        # gs://, az://, ... : fsspec knows them; credentials come from their own environment
        return Place(fs=fsspec.filesystem(protocol), root=rest.rstrip("/"), protocol=protocol)
    return Place(fs=_s3(storage), root=rest.rstrip("/"), protocol="s3", polars_options=_polars_s3(storage))


@lru_cache(maxsize=8)
def _s3(storage: ObjectStorageSettings) -> fsspec.AbstractFileSystem:
    opts: dict = {}
    client: dict = {}
    if storage.access_key_id:
        opts["key"] = storage.access_key_id
    if storage.secret_access_key is not None:
        opts["secret"] = storage.secret_access_key.get_secret_value()
    if storage.endpoint_url:
        client["endpoint_url"] = storage.endpoint_url
    if storage.region:
        client["region_name"] = storage.region
    # s3fs caches listings; the lake is appended to by other processes, so every listing is fresh
    return fsspec.filesystem("s3", client_kwargs=client, use_listings_cache=False, skip_instance_cache=True, **opts)


def _polars_s3(storage: ObjectStorageSettings) -> dict[str, str]:
    opts: dict[str, str] = {}
    if storage.endpoint_url:
        opts["aws_endpoint_url"] = storage.endpoint_url
        if storage.endpoint_url.startswith("http://"):
            opts["aws_allow_http"] = "true"
    if storage.access_key_id:
        opts["aws_access_key_id"] = storage.access_key_id
    if storage.secret_access_key is not None:
        opts["aws_secret_access_key"] = storage.secret_access_key.get_secret_value()
    if storage.region:
        opts["aws_region"] = storage.region
    return opts


def lake_place(settings: Settings) -> Place:
    return place(settings.lake_location, settings.store.object_storage)


def media_place(settings: Settings) -> Place:
    return place(settings.media_location, settings.store.object_storage)
