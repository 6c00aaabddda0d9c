"""The browser page on a gateway that needs keys, in real headless Chromium: the presenter's
page lets listener keys follow its session (the "Anyone with a listener key" box), a
listener's page then shows its captions, and a private session gets a clear refusal.
No model is needed: the captions are published into the session directly."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

import httpx
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, Page, async_playwright

from services.gateway.live.engine.store import SessionStore
from services.gateway.settings import GatewaySettings
from shared.admin import keystore
from tests.apps import running_app
from tests.gateway.live_helpers import listening
from tests.gateway.test_page import CHROMIUM
from tests.polling import eventually

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian 'chromium' is not installed"),
    pytest.mark.timeout(90),
]


@dataclass
class Site:
    address: str
    presenter: str
    listener: str


@pytest.fixture
async def site(clean_redis: str, aredis: aioredis.Redis) -> AsyncIterator[Site]:
    presenter, _ = await keystore.create(aredis, "presenter", "pat@example.com")
    listener, _ = await keystore.create(aredis, "listener", "lena@example.com")
    settings = GatewaySettings(redis_url=clean_redis, auth_cache_s=0, registry_cache_s=0)
    async with running_app(settings) as app, listening(app) as address:
        yield Site(address, presenter, listener)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
    ]
    async with async_playwright() as driver:
        chromium = await driver.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield chromium
        finally:
            await chromium.close()


async def page_with_key(browser: Browser, key: str, url: str, errors: list[str]) -> Page:
    page = await browser.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.add_init_script(f"sessionStorage.setItem('pyparrot-key', {key!r});")
    await page.goto(url)
    return page


async def status_says(page: Page, words: str) -> bool:
    return words in await page.inner_text("#listener-status")


async def test_a_listener_key_follows_a_shared_session_and_not_a_private_one(
    site: Site, browser: Browser, aredis: aioredis.Redis
) -> None:
    errors: list[str] = []
    presenter = await page_with_key(browser, site.presenter, f"http://{site.address}/", errors)
    await presenter.get_by_role("button", name="Start presenting").click()
    await presenter.locator("#session-box").wait_for(state="visible", timeout=15_000)
    session_id = await presenter.locator("#session-id").inner_text()
    owner = {"Authorization": f"Bearer {site.presenter}"}

    async with httpx.AsyncClient(base_url=f"http://{site.address}", headers=owner) as http:

        async def shared() -> bool:
            return bool((await http.get(f"/v1/sessions/{session_id}")).json()["public"])

        await eventually(shared, 15)
        private = (await http.post("/v1/sessions", json={})).json()["id"]

    follow = f"http://{site.address}/#listen={session_id}"
    listener = await page_with_key(browser, site.listener, follow, errors)
    await listener.get_by_role("button", name="Join").click()
    await eventually(partial(status_says, listener, "Listening to session"), 15)
    store = SessionStore(aredis, ttl_s=600, events_maxlen=100)
    caption = {"type": "stt_final", "utterance": 0, "text": "welcome to the lecture"}
    await store.publish(session_id, caption)
    await listener.get_by_text("welcome to the lecture").wait_for(timeout=15_000)

    outsider = await page_with_key(
        browser, site.listener, f"http://{site.address}/#listen={private}", errors
    )
    await outsider.get_by_role("button", name="Join").click()
    await eventually(partial(status_says, outsider, "ask its presenter for access"), 15)
    assert not errors, errors
