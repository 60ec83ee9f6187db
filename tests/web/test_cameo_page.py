"""The owner's cameo page in a real headless Chromium: consent, the challenge, settings, people
and the audit trail."""

from __future__ import annotations

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from cameos.models import Cameo, CameoAccess, Challenge, ConsentRecord
from tests.cameos.cameos import registered_cameo
from tests.conftest import LiveStack, Member
from tests.web.conftest import sign_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_new_user_reads_the_notice_agrees_and_gets_a_challenge(
    live_stack: LiveStack, alice: Member, browser: webdriver.Chrome
) -> None:
    sign_in(browser, live_stack, "alice")
    browser.find_element(By.ID, "my-cameo-link").click()

    start = browser.find_element(By.ID, "start-registration")
    assert not start.is_enabled()
    assert "How to revoke" in browser.find_element(By.ID, "consent").text
    browser.find_element(By.ID, "consent-agree").click()
    start.click()

    digits = WebDriverWait(browser, 20).until(
        expected_conditions.presence_of_element_located((By.ID, "challenge-digits"))
    )
    challenge = Challenge.objects.get(cameo__owner=alice.user)
    assert digits.text == " ".join(challenge.digits)
    assert browser.find_element(By.ID, "challenge-turns").text == ", then ".join(challenge.turns)
    consent = ConsentRecord.objects.get(cameo__owner=alice.user)
    assert consent.client.startswith("web: ")


def test_the_owner_sets_audience_rules_and_people_and_sees_the_trail(
    live_stack: LiveStack, alice: Member, bob: Member, browser: webdriver.Chrome
) -> None:
    cameo = registered_cameo(alice.user)
    sign_in(browser, live_stack, "alice")
    browser.get(f"{live_stack.url}/cameo/")

    assert browser.find_element(By.ID, "status-text").text == "verified"
    Select(browser.find_element(By.ID, "audience")).select_by_value("approved")
    browser.find_element(By.ID, "rules").send_keys("no political content\nno alcohol")
    browser.find_element(By.ID, "preferences").send_keys("always wearing my red cap")
    browser.find_element(By.CSS_SELECTOR, "#settings-form button[type=submit]").click()
    WebDriverWait(browser, 20).until(
        expected_conditions.text_to_be_present_in_element((By.ID, "settings-status"), "Saved.")
    )
    browser.find_element(By.ID, "access-handle").send_keys("@bob")
    browser.find_element(By.CSS_SELECTOR, "#access-form button[type=submit]").click()
    WebDriverWait(browser, 20).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, '#access-list li[data-handle="bob"]')
    )

    cameo.refresh_from_db()
    assert cameo.audience == Cameo.Audience.APPROVED
    assert cameo.rules == ["no political content", "no alcohol"]
    assert cameo.preferences == "always wearing my red cap"
    assert CameoAccess.objects.get(cameo=cameo).user == bob.user
    kinds = [row.get_attribute("data-kind")
             for row in browser.find_elements(By.CSS_SELECTOR, "#events tr[data-kind]")]
    assert kinds.count("settings_changed") == 2
    assert kinds[-2:] == ["check_passed", "consent_given"]


def test_a_stranger_sees_only_their_own_empty_cameo_page(
    live_stack: LiveStack, alice: Member, charlie: Member, browser: webdriver.Chrome
) -> None:
    registered_cameo(alice.user, rules=["no alcohol"])
    sign_in(browser, live_stack, "charlie")
    browser.get(f"{live_stack.url}/cameo/")

    assert "You have no cameo yet." in browser.page_source
    assert "no alcohol" not in browser.page_source
    assert "@alice" not in browser.page_source


def test_the_owner_exports_her_audit_log_and_revokes_her_cameo_with_a_receipt(
    live_stack: LiveStack, alice: Member, bob: Member, browser: webdriver.Chrome
) -> None:
    cameo = registered_cameo(alice.user)
    sign_in(browser, live_stack, "alice")
    browser.get(f"{live_stack.url}/cameo/")
    # The export links are the API's, signed in by the page's session.
    export = browser.find_element(By.ID, "export-csv").get_attribute("href")
    assert export is not None
    csv_text = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then((r) => r.text()).then(done);",
        export,
    )
    assert csv_text.splitlines()[0].startswith("time,event,author")

    browser.find_element(By.ID, "revoke").click()
    WebDriverWait(browser, 10).until(expected_conditions.alert_is_present()).accept()

    WebDriverWait(browser, 60).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, '#receipt[data-complete="true"]')
    )
    assert browser.find_element(By.ID, "receipt-vectors").text == "1"
    assert browser.find_element(By.ID, "receipt-references").text == "1"
    assert Cameo.objects.get(pk=cameo.pk).status == "revoked"
    # She may register again: the consent notice is offered.
    assert browser.find_element(By.ID, "start-registration")
