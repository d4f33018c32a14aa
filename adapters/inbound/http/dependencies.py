"""Named dependencies the controllers declare (provided in app.py). They are our own objects,
so Litestar is told not to validate them (it cannot isinstance-check a Protocol anyway)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from litestar.di import Dependency
from litestar.params import SkipValidationMarker

from adapters.inbound.http.media_delivery import MediaDelivery
from application.accounts import Accounts, Principal
from application.analytics import ViewBeacon
from application.bulkheads import Bulkheads
from application.engagement import Engagement
from application.listing import VideoListing
from application.ports import ObjectStorage
from application.resumable import ResumableUploads
from application.status_feed import StatusFeed
from application.streaming import Streaming
from application.videos import Videos
from application.webhooks import Webhooks

_named, _unchecked = Dependency(kind="named"), SkipValidationMarker()

AccountsDep = Annotated[Accounts, _named, _unchecked]
PrincipalDep = Annotated[Principal, _named, _unchecked]
VideosDep = Annotated[Videos, _named, _unchecked]
ListingDep = Annotated[VideoListing, _named, _unchecked]
StreamingDep = Annotated[Streaming, _named, _unchecked]
StorageDep = Annotated[ObjectStorage, _named, _unchecked]
UploadsDep = Annotated[ResumableUploads, _named, _unchecked]
WebhooksDep = Annotated[Webhooks, _named, _unchecked]
HealthChecksDep = Annotated[Mapping[str, Callable[[], Awaitable[None]]], _named, _unchecked]
EngagementDep = Annotated[Engagement, _named, _unchecked]
BeaconDep = Annotated[ViewBeacon, _named, _unchecked]
BulkheadsDep = Annotated[Bulkheads, _named, _unchecked]
StatusFeedDep = Annotated[StatusFeed, _named, _unchecked]
BreakerStatesDep = Annotated[Callable[[], Mapping[str, str]], _named, _unchecked]


@dataclass(frozen=True)
class MediaSources:
    """What /media reads, as one dependency: Litestar resolves two or more dependencies of one
    handler in a task group, which costs a warm manifest a third of its time."""

    streaming: Streaming
    storage: ObjectStorage
    delivery: MediaDelivery = MediaDelivery()  # the app state's too; here it costs no lookup per request


MediaDep = Annotated[MediaSources, _named, _unchecked]
