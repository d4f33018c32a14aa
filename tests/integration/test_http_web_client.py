"""How the api serves the browser client: its pages under a strict Content-Security-Policy,
its static files with the right types, and nothing else taken from the API's paths."""

from __future__ import annotations

import pytest

from adapters.inbound.http.web import content_security_policy, origin_of


@pytest.mark.parametrize("path", ["/", "/signin", "/signup", "/upload", "/my", "/browse", "/admin",
                                  "/watch/0b6c5e0e-4bb9-4a53-9d38-6c3f0a7c1e59", "/shared/anything"])
def test_the_clients_paths_get_its_page_under_a_strict_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/static/js/main.js"></script>' in response.text
    policy = dict(part.split(" ", 1) for part in response.headers["content-security-policy"].split("; "))
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'none'"
    assert policy["media-src"] == "'self' blob:" and policy["worker-src"] == "'self' blob:"
    assert policy["frame-ancestors"] == "'none'" and "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY" and response.headers["x-content-type-options"] == "nosniff"


def test_the_page_has_no_inline_script(client):
    page = client.get("/").text
    assert page.count("<script") == 2 and page.count(' src="/static/') == 2 and "style=" not in page


@pytest.mark.parametrize("path, content_type", [
    ("/static/js/main.js", "text/javascript; charset=utf-8"),
    ("/static/vendor/hls.min.mjs", "text/javascript; charset=utf-8"),
    ("/static/vendor/tus.min.js", "text/javascript; charset=utf-8"),
    ("/static/app.css", "text/css; charset=utf-8"),
])
def test_static_files_have_their_types_and_revalidate(client, path, content_type):
    response = client.get(path)
    assert response.status_code == 200 and response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "no-cache"
    again = client.get(path, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize("path", ["/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/nothing.js",
                                  "/static/vendor/hls.js.LICENSE", "/static/js"])
def test_nothing_outside_the_static_files_is_served(client, path):
    response = client.get(path)
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/no/such/route", "/api/nothing-here", "/watch", "/watch/a/b", "/media"])
def test_other_paths_stay_not_found(client, path):
    assert client.get(path).status_code == 404


def test_a_cdn_origin_may_serve_the_pages_media():
    assert origin_of("https://cdn.example.com/media") == ["https://cdn.example.com"]
    assert origin_of("/media") == [] and origin_of(None) == []
    policy = content_security_policy(["https://cdn.example.com"])
    assert "media-src 'self' blob: https://cdn.example.com" in policy and "script-src 'self';" in policy
