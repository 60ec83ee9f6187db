"""The web studio in a real headless Chromium: sign in with a session, ask for a video, watch it
progress live over the WebSocket, and play it from the authenticated content endpoint."""

from __future__ import annotations

import pytest
from django.conf import settings
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import LiveStack, Member
from tests.web.conftest import sign_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_signed_in_user_makes_a_video_and_watches_it_finish_live(
    live_stack: LiveStack, alice: Member, browser: webdriver.Chrome
) -> None:
    sign_in(browser, live_stack, "alice")

    browser.find_element(By.ID, "prompt").send_keys('A lighthouse at night, "hello sailors"')
    browser.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()
    card = WebDriverWait(browser, 20).until(
        lambda driver: driver.find_element(By.CSS_SELECTOR, ".video[data-video-id]")
    )
    WebDriverWait(browser, 90).until(lambda _: card.get_attribute("data-status") == "completed")

    player = card.find_element(By.TAG_NAME, "video")
    WebDriverWait(browser, 30).until(
        lambda driver: driver.execute_script("return arguments[0].readyState >= 1", player)
    )
    duration = browser.execute_script("return arguments[0].duration", player)
    assert duration == pytest.approx(4.0, abs=0.1)
    assert card.find_element(By.CSS_SELECTOR, "progress").get_attribute("value") == "100"
    browser.save_screenshot(str(settings.VAR_DIR / "logs" / "studio.png"))


def test_the_studio_shows_nobody_elses_videos(
    live_stack: LiveStack, alice: Member, bob: Member, browser: webdriver.Chrome
) -> None:
    from generation.actions.requests import GenerationRequest, check_and_request_generation

    check_and_request_generation(
        alice.user,
        GenerationRequest(prompt="alice only", model="sora-2", seconds=4, width=720, height=1280),
    )

    sign_in(browser, live_stack, "bob")

    assert browser.find_elements(By.CSS_SELECTOR, ".video[data-video-id]") == []
    assert "alice only" not in browser.page_source


def test_the_studio_requires_signing_in(live_stack: LiveStack, browser: webdriver.Chrome) -> None:
    browser.get(f"{live_stack.url}/")

    assert browser.current_url.startswith(f"{live_stack.url}/accounts/login/")
