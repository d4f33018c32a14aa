"""Cross-cutting HTTP behaviour: request ids, access log, security headers, metrics, rate limits, CORS."""

from adapters.inbound.http.middleware.access_log import configure_access_log
from adapters.inbound.http.middleware.cors import cors_config, parse_cors_origins
from adapters.inbound.http.middleware.observe import observe_requests
from adapters.inbound.http.middleware.rate_limit import RateLimiting, RateLimitMiddleware, principal_provider

__all__ = [
    "RateLimitMiddleware", "RateLimiting", "configure_access_log", "cors_config", "observe_requests",
    "parse_cors_origins", "principal_provider",
]
