"""The dashboard in a real browser (Debian's chromium, headless, through Selenium) against the
real services and broker, with the network cut off: what the NDRC's supervisor sees, a task's
history and as-of replay, an alert arriving live, what a JILIN implementer is not shown, and
``/docs`` of every service rendering with nothing from another host."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from policytrack.demo import TASKS, Demo, token_for
from tests.conftest import Browser

JILIN = {"Authorization": f"Bearer {token_for('jilin')}"}
WAIT = 60


@pytest.fixture(scope="module")
def system(module_services) -> dict[str, Any]:
    """The four services, and the seed's scenario played into them, for every test here."""
    service_factory = module_services
    tasks = service_factory("tasks", POLICYTRACK_TASKS_WATCH_INTERVAL_SECONDS="1").start()
    notifications = service_factory("notifications").start()
    audit = service_factory("audit", POLICYTRACK_AUDIT_CHECKPOINT_INTERVAL_SECONDS="1").start()
    web = service_factory(
        "web",
        POLICYTRACK_WEB_TASKS_URL=tasks.url,
        POLICYTRACK_WEB_NOTIFICATIONS_URL=notifications.url,
        POLICYTRACK_WEB_AUDIT_URL=audit.url,
    ).start()
    player = Demo(tasks.url, say=lambda _: None, namespace=f"browser-{uuid.uuid4().hex[:8]}")
    player.setup()
    player.submit_report(audit.url)
    return {"tasks": tasks, "notifications": notifications, "audit": audit, "web": web, "ids": player.ids}


def until(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = WAIT) -> Any:
    # A page that reloads while it is polled leaves stale elements behind: poll again.
    waiting = WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,))
    return waiting.until(condition, message=f"waited {timeout}s for {what}")


def sign_in(browser: Browser, web_url: str, department: str, role: str, user: str) -> None:
    driver = browser.driver
    driver.get(f"{web_url}/signin")
    driver.find_element(By.ID, "user").clear()
    driver.find_element(By.ID, "user").send_keys(user)
    Select(driver.find_element(By.ID, "department")).select_by_value(department)
    Select(driver.find_element(By.ID, "role")).select_by_value(role)
    driver.find_element(By.ID, "dev-signin-submit").click()
    until(driver, lambda d: d.find_elements(By.ID, "signed-in-as"), f"{user} signed in")
    assert department in driver.find_element(By.ID, "signed-in-as").text


def text_of(driver: Any, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


async def test_the_supervisor_follows_the_plan_on_the_dashboard(system, browser: Browser) -> None:
    web, driver = system["web"], browser.driver
    sign_in(browser, web.url, "NDRC", "supervisor", "u-ndrc-regional-dept")

    # The overview: every field of the demo on the chart, every task in the table.
    driver.get(f"{web.url}/")
    bars = {
        bar.get_attribute("data-field")
        for bar in driver.find_elements(By.CSS_SELECTOR, "#field-progress rect[data-field]")
    }
    assert {field for _, field, *_ in TASKS} <= bars
    listed = text_of(driver, "tasks")
    assert all(title in listed for _, _, title, *_ in TASKS)
    assert int(text_of(driver, "escalated-count")) >= 1
    assert driver.find_elements(By.CSS_SELECTOR, "#late-milestones tr.late")
    browser.screenshot("overview")

    # A task: its history with departments and actors, and as it stood after its first report.
    industry = system["ids"]["industry"]
    driver.find_element(By.CSS_SELECTOR, f'#tasks tr[data-task="{industry}"] a').click()
    until(driver, lambda d: d.find_elements(By.ID, "history"), "the task page")
    assert text_of(driver, "percent") == "40%"
    history = text_of(driver, "history")
    assert "u-jilin-development-office" in history and "u-miit-planning-dept" in history and "MIIT" in history
    first_report = driver.find_element(By.XPATH, "//tr[td[contains(., 'reported progress of 35%')]]")
    Select(driver.find_element(By.ID, "as-of")).select_by_value(first_report.get_attribute("data-time"))
    until(driver, lambda d: d.find_elements(By.ID, "as-of-shown"), "the task replayed as of its first report")
    assert text_of(driver, "percent") == "35%"
    browser.screenshot("task")

    # Responsibility, sorted by what is late.
    driver.get(f"{web.url}/responsibility")
    driver.find_element(By.LINK_TEXT, "late").click()
    until(driver, lambda d: "sort=late" in d.current_url, "the table sorted by lateness")
    lates = [int(c.text) for c in driver.find_elements(By.CSS_SELECTOR, '#responsibility td[data-column="late"]')]
    assert lates == sorted(lates, reverse=True) and lates[0] > 0
    browser.screenshot("responsibility")

    # The printable report, as the browser would save it as PDF.
    driver.get(f"{web.url}/report")
    assert "evaluation report" in text_of(driver, "report").lower()
    pdf = driver.execute_cdp_cmd("Page.printToPDF", {"printBackground": True})
    (browser.screenshots / "report.pdf").write_bytes(base64.b64decode(pdf["data"]))
    assert base64.b64decode(pdf["data"]).startswith(b"%PDF")
    browser.screenshot("report")

    assert browser.requested_hosts() == {"127.0.0.1"}


async def test_an_alert_arrives_live_on_the_alerts_page(system, browser: Browser) -> None:
    web, driver = system["web"], browser.driver
    sign_in(browser, web.url, "JILIN", "implementer", "u-jilin-development-office")
    driver.get(f"{web.url}/alerts")
    until(driver, lambda d: text_of(d, "live-state") == "live", "the live stream")
    driver.execute_script("window.notReloaded = true")

    title = f"Live alert check {uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=system["tasks"].url, timeout=30) as client:
        plan = system["ids"]["plan"]
        due = datetime.now(UTC) + timedelta(days=200)
        task = await client.post(
            "/v1/tasks",
            headers=JILIN,
            json={
                "plan_id": plan,
                "title": title,
                "field": "trade",
                "lead_department": "JILIN",
                "supporting_departments": ["GACC"],
                "due": due.isoformat(),
            },
        )
        assert task.status_code == 201, task.text
        milestone = await client.post(
            f"/v1/tasks/{task.json()['id']}/milestones",
            headers=JILIN,
            json={"title": title, "due": (datetime.now(UTC) + timedelta(seconds=2)).isoformat()},
        )
        assert milestone.status_code == 201, milestone.text

    until(driver, lambda d: title in text_of(d, "alerts"), "the new milestone's alert on the page")
    assert driver.execute_script("return window.notReloaded") is True
    browser.screenshot("alerts")
    assert browser.requested_hosts() == {"127.0.0.1"}


async def test_a_jilin_implementer_is_not_shown_what_is_not_theirs(system, browser: Browser) -> None:
    web, driver = system["web"], browser.driver
    sign_in(browser, web.url, "JILIN", "implementer", "u-jilin-development-office")
    driver.get(f"{web.url}/report")
    assert "implementation report" in text_of(driver, "refusal")
    driver.get(f"{web.url}/trail")
    assert not driver.find_elements(By.ID, "verify-now")
    driver.get(f"{web.url}/signin")
    sign_in(browser, web.url, "MOFCOM", "supporter", "u-mofcom-asia-dept")
    driver.get(f"{web.url}/")
    rows = driver.find_elements(By.CSS_SELECTOR, "#tasks tbody tr[data-task]")
    cells = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    # The broker is the test session's: tasks of other tests are listed too, if MOFCOM has a part.
    assert all("MOFCOM" in lead or "MOFCOM" in supporting for _, _, lead, supporting, *_ in cells)
    listed = {title for _, title, *_ in cells}
    ours = {title: "MOFCOM" in supporting for _, _, title, _, supporting, *_ in TASKS}
    assert {title for title, theirs in ours.items() if theirs} <= listed
    assert not {title for title, theirs in ours.items() if not theirs} & listed


async def test_the_auditor_verifies_the_trail_from_the_dashboard(system, browser: Browser) -> None:
    web, driver = system["web"], browser.driver
    sign_in(browser, web.url, "NAO", "auditor", "u-nao-auditor")
    driver.get(f"{web.url}/trail")
    driver.find_element(By.ID, "verify-now").click()
    until(driver, lambda d: "intact" in text_of(d, "last-verification"), "the verification's result", timeout=120)
    assert "u-nao-auditor" in text_of(driver, "verified-by")
    assert "entry" in text_of(driver, "last-checkpoint")
    browser.screenshot("trail")


async def test_docs_of_every_service_render_with_the_network_cut_off(system, browser: Browser) -> None:
    driver = browser.driver
    for name in ("tasks", "notifications", "audit", "web"):
        driver.get(f"{system[name].url}/docs")
        until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title"), f"{name}'s Swagger UI")
        assert "policytrack" in driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
        assert driver.find_elements(By.CSS_SELECTOR, ".opblock"), f"{name}'s operations"
    browser.screenshot("docs")
    assert browser.requested_hosts() == {"127.0.0.1"}
