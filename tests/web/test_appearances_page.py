"""The "Where I appear" page in a real headless Chromium: the owner sees every video with their
cameo in it, watches it, approves, removes, reports and blocks, and the list keeps itself
current without a reload."""

from __future__ import annotations

import httpx
import pytest
from django.urls import Resolver404, resolve
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from cameos.actions.owner import do_decide_access
from cameos.models import Appearance, Cameo, CameoAccess
from generation.actions.requests import GenerationRequest, check_and_request_generation
from generation.checking import check_job_output
from generation.models import VideoJob
from generation.rendering import render_job
from sora_social.accounts.models import Block
from tests.cameos.cameos import registered_cameo
from tests.conftest import LiveStack, Member
from tests.private_servers import wait_for
from tests.web.conftest import sign_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RENDER_TIMEOUT = 120
PAGE_TIMEOUT = 20
PROMPT = '@alice waving at the camera, she says "<b>hi bob</b>"'


def _alice_lets_bob_use_her_cameo(alice: Member, bob: Member) -> Cameo:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.APPROVED)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)
    return cameo


def _bob_tags_alice(bob: Member, prompt: str = PROMPT) -> VideoJob:
    job, _ = check_and_request_generation(
        bob.user,
        GenerationRequest(prompt=prompt, model="sora-2", seconds=4, width=720, height=1280),
    )
    return job


def _made(job: VideoJob) -> VideoJob:
    """Render and check `job` here; the live stack's workers may win either step, so wait for
    whoever does it to finish."""
    render_job(job.pk)
    check_job_output(job.pk)
    wait_for(
        lambda: VideoJob.objects.get(pk=job.pk).status in ("completed", "failed"),
        timeout=RENDER_TIMEOUT, what=f"video {job.pk} to be made",
    )
    job.refresh_from_db()
    assert job.status == "completed", job.error_code
    return job


def _open_page(browser: webdriver.Chrome, stack: LiveStack, handle: str) -> None:
    sign_in(browser, stack, handle)
    browser.find_element(By.ID, "appearances-link").click()
    WebDriverWait(browser, PAGE_TIMEOUT).until(
        expected_conditions.text_to_be_present_in_element((By.ID, "live-status"), "live")
    )


def _card(browser: webdriver.Chrome, job: VideoJob) -> WebElement:
    selector = f'.appearance[data-video-id="{job.pk}"]'
    return WebDriverWait(browser, PAGE_TIMEOUT).until(
        lambda driver: driver.find_element(By.CSS_SELECTOR, selector)
    )


def _wait_for_status(browser: webdriver.Chrome, card: WebElement, status: str) -> None:
    WebDriverWait(browser, PAGE_TIMEOUT).until(
        lambda _: card.get_attribute("data-status") == status
    )


def _accept_confirm(browser: webdriver.Chrome) -> None:
    WebDriverWait(browser, PAGE_TIMEOUT).until(expected_conditions.alert_is_present())
    browser.switch_to.alert.accept()


def test_the_owner_sees_a_friends_draft_and_watches_it(
    live_stack: LiveStack, alice: Member, bob: Member, browser: webdriver.Chrome
) -> None:
    _alice_lets_bob_use_her_cameo(alice, bob)
    job = _made(_bob_tags_alice(bob))
    _open_page(browser, live_stack, "alice")

    card = _card(browser, job)
    assert card.get_attribute("data-status") == "draft"
    assert card.find_element(By.CSS_SELECTOR, ".author").text == "@bob"
    assert card.find_element(By.CSS_SELECTOR, ".status-label").text == "· draft"
    assert [badge.text for badge in card.find_elements(By.CSS_SELECTOR, ".badges span")] == [
        "tagged"
    ]
    assert card.find_element(By.CSS_SELECTOR, ".prompt").text == PROMPT
    assert card.find_elements(By.CSS_SELECTOR, ".prompt b") == []  # text, never markup
    assert not card.find_element(By.CSS_SELECTOR, ".approve").is_displayed()
    thumbnail = card.find_element(By.CSS_SELECTOR, "img.thumbnail")
    WebDriverWait(browser, PAGE_TIMEOUT).until(
        lambda driver: driver.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", thumbnail
        )
    )

    card.find_element(By.CSS_SELECTOR, ".watch").click()
    player = card.find_element(By.CSS_SELECTOR, ".player video")
    WebDriverWait(browser, 30).until(
        lambda driver: driver.execute_script("return arguments[0].readyState >= 1", player)
    )
    assert browser.execute_script("return arguments[0].duration", player) == pytest.approx(
        4.0, abs=0.1
    )
    assert card.find_element(By.CSS_SELECTOR, ".card-error").text == ""


def test_the_owner_turns_approval_on_then_approves_a_held_video_into_a_draft(
    live_stack: LiveStack, alice: Member, bob: Member, browser: webdriver.Chrome
) -> None:
    cameo = _alice_lets_bob_use_her_cameo(alice, bob)
    _open_page(browser, live_stack, "alice")
    browser.find_element(By.ID, "requires-approval").click()
    WebDriverWait(browser, PAGE_TIMEOUT).until(
        expected_conditions.text_to_be_present_in_element((By.ID, "approval-status"), "Saved.")
    )
    cameo.refresh_from_db()
    assert cameo.requires_approval is True

    job = _made(_bob_tags_alice(bob))
    card = _card(browser, job)
    _wait_for_status(browser, card, "awaiting_approval")
    assert card.find_element(By.CSS_SELECTOR, ".status-label").text == (
        "· waiting for your approval"
    )
    assert card.find_element(By.CSS_SELECTOR, ".decline").is_displayed()
    card.find_element(By.CSS_SELECTOR, ".approve").click()

    _wait_for_status(browser, card, "draft")
    assert card.find_element(By.CSS_SELECTOR, ".status-label").text == (
        "· draft (you approved it)"
    )
    assert not card.find_element(By.CSS_SELECTOR, ".approve").is_displayed()
    appearance = Appearance.objects.get(video=job)
    assert appearance.owner_decision == Appearance.OwnerDecision.APPROVED


def test_the_owner_removes_a_video_for_everyone(
    live_stack: LiveStack, alice: Member, bob: Member, browser: webdriver.Chrome
) -> None:
    _alice_lets_bob_use_her_cameo(alice, bob)
    job = _made(_bob_tags_alice(bob))
    _open_page(browser, live_stack, "alice")

    card = _card(browser, job)
    card.find_element(By.CSS_SELECTOR, ".remove").click()
    _accept_confirm(browser)

    _wait_for_status(browser, card, "removed")
    assert card.find_element(By.CSS_SELECTOR, ".status-label").text == (
        "· removed (you removed it)"
    )
    for hidden in (".remove", ".watch", "img.thumbnail"):
        assert not card.find_element(By.CSS_SELECTOR, hidden).is_displayed()
    # She can still report what its author did.
    assert card.find_element(By.CSS_SELECTOR, ".report").is_displayed()
    job.refresh_from_db()
    assert job.is_withdrawn
    content = httpx.get(f"{live_stack.url}/v1/videos/{job.pk}/content",
                        headers={"Authorization": f"Bearer {bob.key}"}, timeout=30)
    assert content.status_code == 410, content.text


def test_a_new_appearance_shows_up_and_changes_without_a_reload(
    live_stack: LiveStack, alice: Member, bob: Member, browser: webdriver.Chrome
) -> None:
    _alice_lets_bob_use_her_cameo(alice, bob)
    _open_page(browser, live_stack, "alice")
    assert browser.find_element(By.ID, "empty").is_displayed()
    browser.execute_script("window.pageNotReloaded = true")

    job = _bob_tags_alice(bob)
    card = _card(browser, job)
    assert card.get_attribute("data-status") in ("in_progress", "draft")
    _made(job)
    _wait_for_status(browser, card, "draft")

    assert browser.execute_script("return window.pageNotReloaded") is True
    assert not browser.find_element(By.ID, "empty").is_displayed()
    assert browser.find_element(By.ID, "appearance-count").text == "(1)"


def test_a_stranger_sees_none_of_alices_appearances(
    live_stack: LiveStack, alice: Member, bob: Member, charlie: Member,
    browser: webdriver.Chrome,
) -> None:
    _alice_lets_bob_use_her_cameo(alice, bob)
    _bob_tags_alice(bob, "@alice reading a secret letter")
    _open_page(browser, live_stack, "charlie")

    assert browser.find_element(By.ID, "no-cameo").is_displayed()
    assert browser.find_element(By.ID, "empty").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, ".appearance") == []
    assert "secret letter" not in browser.page_source
    assert "@bob" not in browser.page_source


def test_the_owner_blocks_the_author(
    live_stack: LiveStack, alice: Member, bob: Member, browser: webdriver.Chrome
) -> None:
    _alice_lets_bob_use_her_cameo(alice, bob)
    job = _bob_tags_alice(bob)
    _open_page(browser, live_stack, "alice")

    card = _card(browser, job)
    card.find_element(By.CSS_SELECTOR, ".block").click()
    _accept_confirm(browser)

    WebDriverWait(browser, PAGE_TIMEOUT).until(
        lambda _: card.get_attribute("data-blocked") == "true"
    )
    block = card.find_element(By.CSS_SELECTOR, ".block")
    assert block.text == "@bob is blocked"
    assert not block.is_enabled()
    assert Block.objects.filter(blocker=alice.user, blocked=bob.user).count() == 1


def test_the_owner_reports_a_video(
    live_stack: LiveStack, alice: Member, bob: Member, browser: webdriver.Chrome
) -> None:
    try:
        resolve("/api/videos/video_x/reports")
    except Resolver404:
        pytest.skip("POST /api/videos/{id}/reports does not exist yet")
    from moderation.models import Report

    _alice_lets_bob_use_her_cameo(alice, bob)
    job = _made(_bob_tags_alice(bob))
    _open_page(browser, live_stack, "alice")

    card = _card(browser, job)
    card.find_element(By.CSS_SELECTOR, ".report summary").click()
    Select(card.find_element(By.NAME, "reason")).select_by_value("not_me")
    card.find_element(By.NAME, "details").send_keys("I never agreed to this one")
    card.find_element(By.CSS_SELECTOR, ".report-form button[type=submit]").click()

    WebDriverWait(browser, PAGE_TIMEOUT).until(
        lambda _: card.find_element(By.CSS_SELECTOR, ".result").text.startswith("Reported.")
    )
    assert card.find_element(By.CSS_SELECTOR, ".card-error").text == ""
    report = Report.objects.get(video=job)
    assert (report.reporter, report.reason, report.details) == (
        alice.user, "not_me", "I never agreed to this one"
    )
