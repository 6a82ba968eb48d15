"""Open every store an entry point needs from one settings object."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from kinora.settings import Settings
from kinora.stores.db import get_engine
from kinora.stores.lake import Lake
from kinora.stores.media import MediaStore
from kinora.stores.objects import lake_place, media_place


@dataclass
class Stores:
    engine: sa.Engine
    lake: Lake
    media: MediaStore

    @classmethod
    def open(cls, settings: Settings) -> "Stores":
        """Migrate (if needed) and open the operational store, the lake and the media store."""
        settings.home.mkdir(parents=True, exist_ok=True)
        return cls(
            engine=get_engine(settings.database_url, busy_timeout_s=settings.store.sqlite_busy_timeout_s),
            lake=Lake(lake_place(settings)),
            media=MediaStore(media_place(settings)),
        )
