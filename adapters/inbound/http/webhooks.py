"""Webhook routes: register, list, read, delete, the delivery log and a test event."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from msgspec import Meta

from adapters.inbound.http.dependencies import PrincipalDep, WebhooksDep
from adapters.inbound.http.openapi_problems import Problem
from adapters.inbound.http.problems import PROBLEM_JSON
from application.webhooks import DeliveryPage, DeliveryView, NewWebhook, WebhookList, WebhookView
from domain.webhooks import DESCRIPTION_MAX, EVENT_TYPES, URL_MAX


class WebhookRequest(msgspec.Struct):
    url: Annotated[str, Meta(min_length=1, max_length=URL_MAX, description="https:// URL of a public host")]
    events: Annotated[
        list[Annotated[str, Meta(max_length=32)]],
        Meta(min_length=1, max_length=len(EVENT_TYPES), description=", ".join(EVENT_TYPES)),
    ]
    description: Annotated[str, Meta(max_length=DESCRIPTION_MAX)] = ""
    scope: Annotated[str, Meta(max_length=8, description="own (default) or all (admins)")] = "own"


TOO_MANY = ResponseSpec(data_container=Problem, media_type=PROBLEM_JSON, generate_examples=False,
                        description="Conflict: the user has 10 webhooks already")


class WebhooksController(Controller):
    path = "/api/webhooks"
    tags = ["webhooks"]

    @post("", status_code=201, sync_to_thread=True, responses={409: TOO_MANY})
    def register(self, data: JSONBody[WebhookRequest], principal: PrincipalDep, webhooks: WebhooksDep) -> Response[NewWebhook]:
        """Register an endpoint for signed event deliveries; its `secret` is shown in this answer only."""
        created = webhooks.register(principal, url=data.url, events=data.events, description=data.description,
                                    scope=data.scope)
        return Response(created, status_code=201, headers={"Location": f"/api/webhooks/{created.id}",
                                                           "Cache-Control": "no-store"})

    @get("", sync_to_thread=True)
    def list_webhooks(self, principal: PrincipalDep, webhooks: WebhooksDep) -> WebhookList:
        """The caller's endpoints (without secrets)."""
        return webhooks.list(principal)

    @get("/{webhook_id:uuid}", sync_to_thread=True)
    def get_webhook(self, webhook_id: FromPath[UUID], principal: PrincipalDep, webhooks: WebhooksDep) -> WebhookView:
        """One of the caller's endpoints; whether it was disabled, and why."""
        return webhooks.get(principal, webhook_id)

    @delete("/{webhook_id:uuid}", status_code=204, sync_to_thread=True)
    def delete_webhook(self, webhook_id: FromPath[UUID], principal: PrincipalDep, webhooks: WebhooksDep) -> None:
        """Remove an endpoint; nothing more is delivered to it."""
        webhooks.delete(principal, webhook_id)

    @get("/{webhook_id:uuid}/deliveries", sync_to_thread=True)
    def deliveries(
        self, webhook_id: FromPath[UUID], principal: PrincipalDep, webhooks: WebhooksDep,
        cursor: Annotated[str | None, QueryParameter(max_length=32)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> DeliveryPage:
        """The endpoint's recent deliveries, newest first, with each one's last attempt."""
        return webhooks.deliveries(principal, webhook_id, cursor=cursor, limit=limit)

    @post("/{webhook_id:uuid}/test", status_code=202, sync_to_thread=True)
    def send_test(self, webhook_id: FromPath[UUID], principal: PrincipalDep, webhooks: WebhooksDep) -> DeliveryView:
        """Have the notifier send a `webhook.test` event to the endpoint now."""
        return webhooks.send_test(principal, webhook_id)
