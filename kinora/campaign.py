"""Campaign files: what ops hand to ``kinora campaign run``.

A campaign is YAML (or JSON) with a name, a requester, defaults and items; an item with
``count: N`` makes N videos with consecutive seeds. Every request gets an id derived from
(campaign name, item id, copy number), so rerunning a campaign finds what it already did
and publishes nothing twice. The whole file is checked before anything runs, and an error
names the file and the field.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kinora.errors import InputFileError, pydantic_location
from kinora.generation import GenerationSpec, RemixError, limit_problems, resolve_remix
from kinora.ids import stable_id
from kinora.settings import GenerationSettings
from kinora.stores import users as user_store

MAX_REQUESTS_PER_CAMPAIGN = 10_000


class _CampaignModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ItemDefaults(_CampaignModel):
    duration_s: float = Field(4.0, gt=0, description="Clip length in seconds.")
    resolution: str | None = Field(None, pattern=r"^\d+x\d+$", description="WIDTHxHEIGHT; default from settings.")
    fps: int | None = Field(None, gt=0, description="Frames per second; default from settings.")
    seed: int = Field(0, ge=0, description="Seed of the first copy; copies count up from it.")
    negative_prompt: str = Field("", description="What the model should avoid.")


class CampaignItem(_CampaignModel):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Unique within the campaign; part of each request id.")
    prompt: str = Field(min_length=1, description="What to generate.")
    cameos: list[str] = Field(default_factory=list, description="Cameo handles used (with or without '@').")
    count: int = Field(1, ge=1, le=1000, description="Videos to make from this item.")
    duration_s: float | None = Field(None, gt=0)
    resolution: str | None = Field(None, pattern=r"^\d+x\d+$")
    fps: int | None = Field(None, gt=0)
    seed: int | None = Field(None, ge=0)
    negative_prompt: str | None = None
    remix_of: str | None = Field(None, description="Id of a published video to remix.")

    @field_validator("cameos")
    @classmethod
    def _strip_at(cls, v: list[str]) -> list[str]:
        return [h.lstrip("@") for h in v]


class Campaign(_CampaignModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,80}$", description="Campaign id; reruns with the same name resume it.")
    requester: str = Field(description="Handle of the user the videos are made for.")
    defaults: ItemDefaults = Field(default_factory=ItemDefaults)
    items: list[CampaignItem] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def _unique_ids(cls, items: list[CampaignItem]) -> list[CampaignItem]:
        seen: set[str] = set()
        for item in items:
            if item.id in seen:
                raise ValueError(f"item id {item.id!r} appears twice")
            seen.add(item.id)
        return items


def load_campaign(path: Path) -> Campaign:
    """Parse and validate a campaign file; raise :class:`InputFileError` naming the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(path, "", "file not found") from None
    except UnicodeDecodeError:
        raise InputFileError(path, "", "not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise InputFileError(path, where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise InputFileError(path, "", "a campaign is a mapping with name, requester and items")
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        return _raise(path, pydantic_location(err["loc"]), err["msg"])


def _raise(path: Path, where: str, problem: str):
    raise InputFileError(path, where, problem)


def plan_requests(
    *, campaign: Campaign, path: Path, conn: sa.Connection, settings: GenerationSettings
) -> list[GenerationSpec]:
    """Expand items into requests, checking each against the platform's limits."""
    requester = user_store.get_user_by_handle(conn=conn, handle=campaign.requester)
    if requester is None:
        _raise(path, "requester", f"unknown user @{campaign.requester.lstrip('@')}")
    total = sum(item.count for item in campaign.items)
    if total > MAX_REQUESTS_PER_CAMPAIGN:
        _raise(path, "items", f"{total} requests; a campaign holds at most {MAX_REQUESTS_PER_CAMPAIGN}")
    d = campaign.defaults
    specs: list[GenerationSpec] = []
    for i, item in enumerate(campaign.items):
        where = f"items[{i}]"
        resolution = item.resolution or d.resolution or settings.default_resolution
        duration = item.duration_s if item.duration_s is not None else d.duration_s
        fps = item.fps or d.fps or settings.fps
        for field, problem in limit_problems(settings, prompt=item.prompt, resolution=resolution, duration_s=duration, fps=fps):
            _raise(path, f"{where}.{field}", problem)
        width, height = (int(x) for x in resolution.split("x"))
        remix_key, inherited = None, []
        if item.remix_of:
            try:
                remix_key, inherited = resolve_remix(conn=conn, video_id=item.remix_of)
            except RemixError as exc:
                _raise(path, f"{where}.remix_of", str(exc))
        base_seed = item.seed if item.seed is not None else d.seed
        for copy in range(item.count):
            specs.append(
                GenerationSpec(
                    request_id=stable_id("req", campaign.name, item.id, copy),
                    requester_id=requester.id, requester_handle=requester.handle, prompt=item.prompt,
                    negative_prompt=item.negative_prompt if item.negative_prompt is not None else d.negative_prompt,
                    cameos=list(dict.fromkeys(item.cameos + inherited)), width=width, height=height,
                    duration_s=duration, fps=fps, seed=base_seed + copy, campaign_id=campaign.name, source="campaign",
                    remix_of=item.remix_of, remix_media_key=remix_key,
                )
            )
    return specs
