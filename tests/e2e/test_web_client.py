"""The web client in a real browser: Debian's Chromium driven by Playwright, against one
`vodhub dev`, with one small upload made through the client and shared by every test.

The tests run in file order and build on each other as a person would: sign up, upload,
watch it become ready, play it, search for it, share it, administer. Screenshots of the main
pages go to the module's temporary directory."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.fixtures.processes import vodhub_process
from tests.media_factory import write_clip

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
PASSWORD = "correct horse battery"
TITLE = "Holiday <script>window.pwned=1</script> by the sea"
TIMEOUT_MS = 90_000  # generous: the machine may be shared by several test suites
UPLOAD_THROUGHPUT = 20_000  # bytes per second while the upload is paused and resumed


class Site:
    """What the tests share: the server, the browser, the admin's page and the uploaded video."""

    def __init__(self, base_url: str, browser: Browser, screens: Path) -> None:
        self.base_url = base_url
        self.browser = browser
        self.screens = screens
        self.video_id: str | None = None

    def context(self, **options) -> BrowserContext:
        context = self.browser.new_context(base_url=self.base_url, viewport={"width": 1280, "height": 800}, **options)
        context.set_default_timeout(TIMEOUT_MS)
        return context

    def screenshot(self, page: Page, name: str) -> None:
        page.screenshot(path=self.screens / f"{name}.png", full_page=True)

    def api_token(self, username: str) -> dict[str, str]:
        response = httpx.post(f"{self.base_url}/api/auth/login",
                              json={"username_or_email": username, "password": PASSWORD}, timeout=60)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("web-client")
    screens = workdir / "screenshots"
    screens.mkdir()
    expect.set_options(timeout=TIMEOUT_MS)
    with vodhub_process("dev", cwd=workdir, env={}, timeout=180) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"])
        try:
            yield Site(base_url, browser, screens)
        finally:
            browser.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "holiday.mp4", width=640, height=360, seconds=6)


@pytest.fixture(scope="module")
def admin(site) -> Iterator[Page]:
    """The first account, signed up through the client (the first account is the admin)."""
    context = site.context()
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    sign_up(page, "ada")
    yield page
    context.close()


def sign_up(page: Page, username: str) -> None:
    page.goto("/signup")
    page.get_by_label("Username (3–32").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("navigation", name="Main").get_by_text(username)).to_be_visible()


def watch(site: Site, page: Page) -> None:
    page.goto(f"/watch/{site.video_id}")
    page.wait_for_function("() => document.querySelector('video')?.readyState >= 1")


def play_until(page: Page, seconds: float) -> None:
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("s => document.querySelector('video').currentTime > s", arg=seconds, timeout=TIMEOUT_MS)


def test_sign_up_signs_in_and_the_first_account_administers(site, admin):
    nav = admin.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Admin")).to_be_visible()
    expect(nav.get_by_role("button", name="Sign out")).to_be_visible()
    assert admin.evaluate("Object.keys(localStorage).concat(Object.keys(sessionStorage))") == ["vodhub.refresh"]
    admin.reload()  # the refresh token in sessionStorage keeps the session over a reload
    expect(nav.get_by_text("ada")).to_be_visible()


def test_a_tus_upload_resumes_after_a_reload_and_after_a_pause(site, admin, clip):
    exchanges = []  # (method, Upload-Offset) of each tus answer, in order
    admin.on("response", lambda r: exchanges.append((r.request.method, r.headers.get("upload-offset")))
             if "/api/videos/uploads/" in r.url else None)
    network = admin.context.new_cdp_session(admin)
    network.send("Network.enable")
    network.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": UPLOAD_THROUGHPUT})

    def pick_and_upload() -> None:
        admin.get_by_label("Choose a video file").set_input_files(clip)
        admin.get_by_label("Title").fill(TITLE)
        admin.get_by_label("Tags").fill("sea, sun")
        admin.get_by_role("button", name="Upload", exact=True).click()

    admin.goto("/upload")
    pick_and_upload()
    admin.wait_for_function("() => document.querySelector('progress').value > 0.45")
    admin.reload()  # the part in flight is lost; the parts before it are on the server
    expect(admin.get_by_role("navigation", name="Main").get_by_text("ada")).to_be_visible()  # the session is back
    pick_and_upload()
    expect(admin.get_by_text("Resuming an earlier upload of this file.")).to_be_visible()
    admin.wait_for_function("() => document.querySelector('progress').value > 0.85")
    admin.get_by_role("button", name="Pause").click()
    expect(admin.get_by_text(re.compile(r"Paused at \d+%"))).to_be_visible()
    site.screenshot(admin, "upload-paused")
    network.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    admin.get_by_role("button", name="Resume").click()
    expect(admin.get_by_text("Upload complete.")).to_be_visible()

    size = clip.stat().st_size
    resumed = [int(offset) for method, offset in exchanges if method == "HEAD"]
    assert len(resumed) == 2 and 0 < resumed[0] < resumed[1] < size, exchanges  # each went on where it stopped
    assert exchanges[-1] == ("PATCH", str(size))
    link = admin.get_by_role("link", name="open its page")
    site.video_id = link.get_attribute("href").rsplit("/", 1)[-1]
    site.screenshot(admin, "upload-done")


def test_a_file_that_is_not_a_video_is_refused_clearly(site, admin, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 100)
    admin.goto("/upload")
    admin.get_by_label("Choose a video file").set_input_files(text)
    admin.get_by_role("button", name="Upload", exact=True).click()
    expect(admin.locator("#flash")).to_contain_text("This is not a video file vodhub can read")
    expect(admin.locator("#flash")).to_have_class("error")


def test_my_videos_follows_the_status_live_until_ready(site, admin):
    admin.goto("/my")
    item = admin.locator(f"[data-video='{site.video_id}']")
    expect(item).to_be_visible()
    admin.evaluate("""id => {
        const status = document.querySelector(`[data-video='${id}'] .status`);
        window.seen = [status.dataset.status];
        new MutationObserver(() => {
            const now = document.querySelector(`[data-video='${id}'] .status`);
            if (now && now.dataset.status !== window.seen.at(-1)) window.seen.push(now.dataset.status);
        }).observe(document.querySelector('.mine'), {subtree: true, childList: true, attributes: true});
    }""", site.video_id)
    expect(item.locator(".status")).to_have_text("Ready", timeout=3 * TIMEOUT_MS)
    seen = admin.evaluate("window.seen")
    assert seen[-1] == "ready" and len(seen) >= 2, seen  # it changed in place, over the event stream
    expect(item.get_by_text("Qualities: 240p, 360p")).to_be_visible()
    expect(item.get_by_role("heading")).to_have_text(TITLE)  # the <script> in the title is text
    site.screenshot(admin, "my-videos")


def test_playback_advances_past_three_seconds(site, admin):
    watch(site, admin)
    expect(admin.get_by_role("heading", level=1)).to_have_text(TITLE)
    assert admin.evaluate("window.pwned") is None
    play_until(admin, 3.0)
    site.screenshot(admin, "watch")


def test_each_quality_rung_plays_at_its_own_width(site, admin):
    video = httpx.get(f"{site.base_url}/api/videos/{site.video_id}", headers=site.api_token("ada"), timeout=60).json()
    watch(site, admin)
    quality = admin.get_by_label("Quality")
    expect(quality.locator("option")).to_have_count(1 + len(video["renditions"]))
    play_until(admin, 0.5)
    for rendition in video["renditions"]:
        admin.evaluate("document.querySelector('video').currentTime = 0.5; document.querySelector('video').play()")
        quality.select_option(label=rendition["name"])
        admin.wait_for_function(
            "w => document.querySelector('video').videoWidth === w && document.querySelector('video').currentTime > 1",
            arg=rendition["width"], timeout=TIMEOUT_MS)


def test_hovering_the_seek_bar_shows_storyboard_tiles(site, admin):
    watch(site, admin)
    admin.wait_for_function("() => document.querySelector('video').duration > 5")
    seek = admin.get_by_label("Seek")
    box = seek.bounding_box()
    tiles = []
    for fraction in (0.1, 0.9):
        admin.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
        preview = admin.locator(".preview")
        expect(preview).to_be_visible()
        admin.wait_for_function(
            "() => getComputedStyle(document.querySelector('.preview .tile')).backgroundImage.includes('sprite')")
        tiles.append(admin.evaluate("""() => {
            const tile = getComputedStyle(document.querySelector('.preview .tile'));
            return [tile.backgroundPosition, tile.width];
        }"""))
    assert tiles[0] != tiles[1], "a different moment shows a different tile"
    assert float(tiles[0][1].removesuffix("px")) > 0
    site.screenshot(admin, "storyboard")


def test_search_finds_the_video_by_its_words(site, admin):
    admin.goto("/browse")
    admin.get_by_label("Search").fill("holiday")
    admin.get_by_role("button", name="Search").click()
    expect(admin).to_have_url(re.compile(r"/browse\?q=holiday$"))
    expect(admin.get_by_role("list", name="Videos").get_by_role("link", name=TITLE)).to_be_visible()
    site.screenshot(admin, "search")
    admin.get_by_label("Search").fill("volcano")
    admin.get_by_role("button", name="Search").click()
    expect(admin.get_by_text("No videos found.")).to_be_visible()
    admin.goto("/browse?tag=sun")
    expect(admin.get_by_role("link", name=TITLE)).to_be_visible()


COMMENT = "<script>window.pwned=2</script> Lovely light"


def upload_as(site: Site, username: str, path: Path, title: str, tags: str) -> str:
    """Another account's video, uploaded through the API and waited for until ready."""
    registered = httpx.post(f"{site.base_url}/api/auth/register", timeout=60,
                            json={"username": username, "email": f"{username}@example.com", "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    headers = site.api_token(username)
    with path.open("rb") as file:
        answer = httpx.post(f"{site.base_url}/api/videos/upload", headers=headers, timeout=120,
                            data={"title": title, "tags": tags}, files={"file": (path.name, file, "video/mp4")})
    assert answer.status_code == 202, answer.text
    video_id = answer.json()["id"]
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while httpx.get(f"{site.base_url}/api/videos/{video_id}", headers=headers, timeout=60).json()["status"] != "ready":
        assert time.monotonic() < deadline, "the second video did not become ready"
        time.sleep(0.5)
    return video_id


def test_like_comment_and_related_videos_on_the_watch_page(site, admin, clip):
    other = upload_as(site, "bea", clip, "Sunset over the sea", "sea")
    watch(site, admin)

    like = admin.get_by_role("button", name=re.compile("Like"))
    expect(like).to_have_text("♡ Like · 0")
    like.click()
    expect(like).to_have_text("♥ Liked · 1")
    expect(like).to_have_attribute("aria-pressed", "true")

    comments = admin.get_by_role("region", name="Comments")
    comments.get_by_label("Add a comment").fill(COMMENT)
    comments.get_by_role("button", name="Post").click()
    expect(comments.get_by_text(COMMENT, exact=True)).to_be_visible()  # shown as text, never run
    assert admin.evaluate("window.pwned") is None
    comments.get_by_role("button", name="Reply").click()
    comments.get_by_label("Your reply").fill("Where was this?")
    comments.get_by_role("button", name="Reply", exact=True).last.click()
    reply = comments.locator(".replies .comment").first
    expect(reply.get_by_text("Where was this?")).to_be_visible()
    reply.get_by_role("button", name="Edit").click()
    comments.get_by_label("Edit your comment").fill("Where was this taken?")
    comments.get_by_role("button", name="Save").click()
    expect(reply.get_by_text("Where was this taken?")).to_be_visible()
    expect(reply.get_by_text("(edited)")).to_be_visible()
    reply.get_by_role("button", name="Delete").click()
    expect(reply.get_by_text("[deleted]")).to_be_visible()
    site.screenshot(admin, "comments")

    # What was done survives a reload (it is on the server), and the other video sharing a tag
    # is related (the read model catches up on its own: reload until it shows).
    related = admin.get_by_role("complementary", name="Related videos")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        watch(site, admin)
        expect(admin.get_by_role("button", name=re.compile("Like"))).to_have_text("♥ Liked · 1")
        expect(admin.get_by_role("region", name="Comments").get_by_text(COMMENT, exact=True)).to_be_visible()
        if related.get_by_role("link", name="Sunset over the sea").count():
            break
        assert time.monotonic() < deadline, "the video sharing a tag never showed as related"
        time.sleep(1)
    expect(related.get_by_role("link", name="Sunset over the sea")).to_have_attribute("href", f"/watch/{other}")
    video = httpx.get(f"{site.base_url}/api/videos/{site.video_id}", headers=site.api_token("ada"), timeout=60).json()
    assert video["like_count"] == 1 and video["liked_by_me"] is True and video["comment_count"] == 1


def test_the_main_pages_have_no_serious_accessibility_violations(site):
    context = site.context(bypass_csp=True)  # to inject axe-core, which the real policy would refuse
    page = context.new_page()
    page.goto("/signin")
    page.get_by_label("Username or email").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main").get_by_text("ada")).to_be_visible()
    problems = {}
    drawn = {"/browse": ".card", "/upload": "progress", "/my": "[data-video]", f"/watch/{site.video_id}": "option[value='0']",
             "/admin": "form", "/signin": "form"}
    for path, selector in drawn.items():
        page.goto(path)
        page.locator(selector).first.wait_for(state="attached")
        page.add_script_tag(path=AXE)
        violations = page.evaluate(
            "axe.run(document).then(r => r.violations.map(v => [v.id, v.impact, v.nodes.map(n => n.target.join(' '))]))")
        problems[path] = [v for v in violations if v[1] in ("serious", "critical")]
    assert problems == {path: [] for path in problems}
    context.close()


def test_a_private_videos_share_link_plays_without_an_account(site, admin):
    admin.goto("/my")
    item = admin.locator(f"[data-video='{site.video_id}']")
    item.locator("summary").click()
    item.get_by_label("Visibility").select_option("private")
    item.get_by_role("button", name="Save").click()
    expect(admin.get_by_text(re.compile("^Saved"))).to_be_visible()
    link = admin.get_by_label("Share link").input_value()
    assert f"/shared/{site.video_id}#" in link

    stranger = site.context()
    page = stranger.new_page()
    page.goto(link)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in")).to_be_visible()
    play_until(page, 1.0)
    site.screenshot(page, "shared")
    assert httpx.get(f"{site.base_url}/api/videos/{site.video_id}", timeout=60).status_code == 401
    stranger.close()


def test_an_admin_changes_a_users_roles(site, admin):
    context = site.context()
    sign_up(context.new_page(), "bob")
    context.close()
    bob = httpx.get(f"{site.base_url}/api/users/me", headers=site.api_token("bob"), timeout=60).json()
    assert bob["roles"] == ["user"]
    admin.goto(f"/admin?user={bob['id']}")
    expect(admin.get_by_role("heading", name="(@bob)")).to_be_visible()
    admin.get_by_label("moderator").check()
    admin.get_by_role("button", name="Save roles").click()
    expect(admin.get_by_text("Roles of bob: user, moderator.")).to_be_visible()
    site.screenshot(admin, "admin")
    roles = httpx.get(f"{site.base_url}/api/users/{bob['id']}", headers=site.api_token("ada"), timeout=60).json()["roles"]
    assert sorted(roles) == ["moderator", "user"]


def test_pages_carry_a_strict_content_security_policy(site):
    for path in ("/", "/my", f"/watch/{site.video_id}", "/shared/x"):
        policy = httpx.get(site.base_url + path, timeout=60).headers["content-security-policy"]
        assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy
    assert "content-security-policy" not in httpx.get(f"{site.base_url}/health/live", timeout=60).headers
    assert httpx.get(f"{site.base_url}/no/such/page", timeout=60).status_code == 404


def test_the_watch_page_fits_a_phone(site, admin):
    context = site.context()
    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/signin")
    page.get_by_label("Username or email").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main").get_by_text("ada")).to_be_visible()
    page.goto(f"/watch/{site.video_id}")
    expect(page.get_by_label("Quality")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    site.screenshot(page, "watch-phone")
    context.close()
