"""The reference for the api's overhead: a bare Litestar app with one JSON route, like /health/live."""

from litestar import Litestar, get


@get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar(route_handlers=[live])
