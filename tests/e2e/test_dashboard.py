"""The dashboard in a real browser (Debian's chromium, headless, through Selenium, reading
zh-CN) against the real services and broker, with the network cut off: the officials of JILIN,
MOFCOM, the State Council and the NDRC carry a task from approval to completion, a support
request from asking to closing and the report from draft to submission entirely through the
pages; what the NDRC's supervisor sees, a task's history and as-of replay, an alert arriving
live, what a JILIN implementer is not shown, and ``/docs`` of every service rendering with
nothing from another host."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from io import BytesIO
from pathlib import Path
from typing import Any

import axe_selenium_python
import httpx
import openpyxl
import pytest
from icalendar import Calendar
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from policytrack.demo import TASKS, Demo, token_for
from tests.conftest import Browser, Mailroom, ServiceFactory, eventually, running_mailroom, smtp_of

JILIN = {"Authorization": f"Bearer {token_for('jilin')}"}
NAO = {"Authorization": f"Bearer {token_for('nao')}"}
SC = {"Authorization": f"Bearer {token_for('sc')}"}
WAIT = 60


@pytest.fixture(scope="module")
def system_mailroom() -> Iterator[Mailroom]:
    with running_mailroom() as mailroom:
        yield mailroom


@pytest.fixture(scope="module")
def system(module_services: ServiceFactory, system_mailroom: Mailroom) -> dict[str, Any]:
    """The four services, and the seed's scenario played into them, for every test here."""
    service_factory = module_services
    tasks = service_factory("tasks", POLICYTRACK_TASKS_WATCH_INTERVAL_SECONDS="1").start()
    notifications = service_factory("notifications", POLICYTRACK_NOTIFICATIONS_SMTP=smtp_of(system_mailroom)).start()
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
    try:
        return waiting.until(condition, message=f"waited {timeout}s for {what}")
    except TimeoutException as timeout_error:
        shown = driver.find_elements(By.TAG_NAME, "main")
        page = shown[0].text[:3000] if shown else driver.page_source[:3000]
        raise AssertionError(f"waited {timeout}s for {what} at {driver.current_url}; the page said:\n{page}") from (
            timeout_error
        )


def row_titled(title: str, driver: Any) -> list[Any]:
    found: list[Any] = driver.find_elements(By.XPATH, f"//tr[td/a[normalize-space()='{title}']]")
    return found


def on_the_next_page(driver: Any, act: Callable[[], None], what: str) -> None:
    """Do ``act`` and wait until the browser shows another document than the one it was on.

    A mark left on the window goes with its document. Asking an element of the old page whether
    it went stale instead races the navigation: chromium then answers with an inspector error."""
    driver.execute_script("window.policytrackLeft = true")
    act()
    waiting = WebDriverWait(driver, WAIT, poll_frequency=0.2, ignored_exceptions=(WebDriverException,))
    waiting.until(lambda d: d.execute_script("return window.policytrackLeft === undefined"), f"waited for {what}")


def sign_in(browser: Browser, web_url: str, department: str, role: str, user: str) -> None:
    driver = browser.driver
    driver.get(f"{web_url}/signin")
    driver.find_element(By.ID, "user").clear()
    driver.find_element(By.ID, "user").send_keys(user)
    Select(driver.find_element(By.ID, "department")).select_by_value(department)
    Select(driver.find_element(By.ID, "role")).select_by_value(role)
    driver.find_element(By.ID, "dev-signin-submit").click()
    until(driver, lambda d: d.find_elements(By.ID, "signed-in-as"), f"{user} signed in")
    assert driver.find_element(By.ID, "signed-in-as").get_attribute("data-department") == department
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"


def text_of(driver: Any, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


async def test_the_supervisor_follows_the_plan_on_the_dashboard(system: dict[str, Any], browser: Browser) -> None:
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
    assert "u-jilin-development-office" in history and "u-miit-planning-dept" in history and "工业和信息化部" in history
    first_report = driver.find_element(By.XPATH, "//tr[td[contains(., '报告进度 35%')]]")
    Select(driver.find_element(By.ID, "as-of")).select_by_value(first_report.get_attribute("data-time"))
    until(driver, lambda d: d.find_elements(By.ID, "as-of-shown"), "the task replayed as of its first report")
    assert text_of(driver, "percent") == "35%"
    browser.screenshot("task")

    # Responsibility, sorted by what is late.
    driver.get(f"{web.url}/responsibility")
    driver.find_element(By.CSS_SELECTOR, "#responsibility th a[href*='sort=late&']").click()
    until(driver, lambda d: "sort=late" in d.current_url, "the table sorted by lateness")
    lates = [int(c.text) for c in driver.find_elements(By.CSS_SELECTOR, '#responsibility td[data-column="late"]')]
    assert lates == sorted(lates, reverse=True) and lates[0] > 0
    browser.screenshot("responsibility")
    # The same table as a workbook, as the page's link downloads it, opened by openpyxl.
    late_on_page = {
        row.find_element(By.TAG_NAME, "th").text: int(row.find_element(By.CSS_SELECTOR, 'td[data-column="late"]').text)
        for row in driver.find_elements(By.CSS_SELECTOR, "#responsibility tbody tr")
    }
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    async with httpx.AsyncClient(cookies=cookies, timeout=60) as client:
        workbook = await client.get(driver.find_element(By.ID, "export-responsibility").get_attribute("href"))
    assert workbook.status_code == 200, workbook.text
    header, *rows = openpyxl.load_workbook(BytesIO(workbook.content)).worksheets[0].iter_rows(values_only=True)
    assert header[0] == "部门" and "逾期" in header
    late_in_sheet = {row[0]: row[header.index("逾期")] for row in rows}
    assert late_in_sheet and all(late_on_page[name] == late for name, late in late_in_sheet.items())
    assert {name for name, late in late_on_page.items() if late} <= set(late_in_sheet)

    # The printable report, as the browser would save it as PDF.
    driver.get(f"{web.url}/report")
    assert "总体方案实施情况评估报告" in text_of(driver, "report")
    pdf = driver.execute_cdp_cmd("Page.printToPDF", {"printBackground": True})
    (browser.screenshots / "report.pdf").write_bytes(base64.b64decode(pdf["data"]))
    printed = base64.b64decode(pdf["data"])
    assert printed.startswith(b"%PDF")
    assert b"NotoSansCJK" in printed, "the Chinese report is printed in a CJK font (Debian's fonts-noto-cjk)"
    browser.screenshot("report")

    assert browser.requested_hosts() == {"127.0.0.1"}


async def test_an_alert_arrives_live_on_the_alerts_page(system: dict[str, Any], browser: Browser) -> None:
    web, driver = system["web"], browser.driver
    sign_in(browser, web.url, "JILIN", "implementer", "u-jilin-development-office")
    driver.get(f"{web.url}/alerts")
    until(driver, lambda d: text_of(d, "live-state") == "实时", "the live stream")
    driver.execute_script("window.notReloaded = true")

    title = f"口岸通关演练 {uuid.uuid4().hex[:6]}"
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


async def test_a_jilin_implementer_is_not_shown_what_is_not_theirs(system: dict[str, Any], browser: Browser) -> None:
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
    assert all("商务部" in lead or "商务部" in supporting for _, _, lead, supporting, *_ in cells)
    listed = {title for _, title, *_ in cells}
    ours = {title: "MOFCOM" in supporting for _, _, title, _, supporting, *_ in TASKS}
    assert {title for title, theirs in ours.items() if theirs} <= listed
    assert not {title for title, theirs in ours.items() if not theirs} & listed


async def test_the_auditor_verifies_the_trail_from_the_dashboard(system: dict[str, Any], browser: Browser) -> None:
    web, driver = system["web"], browser.driver
    sign_in(browser, web.url, "NAO", "auditor", "u-nao-auditor")
    driver.get(f"{web.url}/trail")
    # The page before may show an earlier verification: only the next page tells this one.
    on_the_next_page(driver, driver.find_element(By.ID, "verify-now").click, "the verification's answer")
    until(driver, lambda d: "完整" in text_of(d, "last-verification"), "the verification's result", timeout=120)
    assert "u-nao-auditor" in text_of(driver, "verified-by")
    assert "第" in text_of(driver, "last-checkpoint")
    browser.screenshot("trail")


async def test_docs_of_every_service_render_with_the_network_cut_off(system: dict[str, Any], browser: Browser) -> None:
    driver = browser.driver
    for name in ("tasks", "notifications", "audit", "web"):
        driver.get(f"{system[name].url}/docs")
        until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title"), f"{name}'s Swagger UI")
        assert "policytrack" in driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
        assert driver.find_elements(By.CSS_SELECTOR, ".opblock"), f"{name}'s operations"
    browser.screenshot("docs")
    assert browser.requested_hosts() == {"127.0.0.1"}


def open_form(driver: Any, xpath: str) -> Any:
    """The form of the action ``xpath`` finds (a ``details.act``), opened."""
    details = until(driver, lambda d: d.find_elements(By.XPATH, xpath), f"the form {xpath}")[0]
    if details.get_attribute("open") is None:
        details.find_element(By.TAG_NAME, "summary").click()
    return details


def fill_and_send(driver: Any, details: Any, **fields: str | list[str]) -> None:
    """Fills the form as a person would (a date through the date picker's value), sends it, and
    waits for the page to say it was recorded. When someone changed the task meanwhile (the
    tasks service's own assessment, say), the page says so, keeps what was typed, and the form
    is sent again, as a person would after a look."""
    anchor = details.get_attribute("id")
    for name, value in fields.items():
        if isinstance(value, list):
            for code in value:
                details.find_element(By.CSS_SELECTOR, f'input[name="{name}"][value="{code}"]').click()
            continue
        element = details.find_element(By.CSS_SELECTOR, f'[name="{name}"]')
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        elif element.get_attribute("type") == "date":
            driver.execute_script("arguments[0].value = arguments[1]", element, value)
        elif element.get_attribute("type") == "file":
            element.send_keys(value)  # the file's path, as a person picks it
        else:
            element.clear()
            element.send_keys(value)
    # The page the form is on may say "recorded" of the act before: only the next page answers.
    on_the_next_page(driver, details.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click, f"{anchor} sent")
    until(driver, lambda d: d.find_elements(By.ID, "done") or d.find_elements(By.ID, "changed"), "an answer")
    if driver.find_elements(By.ID, "changed"):
        assert changed_rows(driver), "what changed is marked"
        again = driver.find_element(By.CSS_SELECTOR, f'#{anchor} button[type="submit"]')
        on_the_next_page(driver, again.click, f"{anchor} sent again")
        until(driver, lambda d: d.find_elements(By.ID, "done"), "the act recorded on the second sending")
    assert "已记录" in text_of(driver, "done")


def changed_rows(driver: Any) -> list[Any]:
    return list(driver.find_elements(By.CSS_SELECTOR, "#history tr.changed"))


def action(command: str, about: str | None = None) -> str:
    near = f" and .//span[@class='about' and normalize-space()='{about}']" if about else ""
    return f"//details[@data-command='{command}'{near}]"


async def test_officials_do_their_work_in_the_dashboard_in_chinese(
    system: dict[str, Any], browser: Browser, tmp_path: Path
) -> None:
    web, driver = system["web"], browser.driver
    run = uuid.uuid4().hex[:6]
    plan_title, task_title = f"长春新区专项方案 {run}", f"中韩跨境电商综合试验区建设 {run}"

    # The State Council approves a plan.
    sign_in(browser, web.url, "SC", "approver", "u-sc-general-office")
    driver.get(f"{web.url}/plan")
    fill_and_send(driver, open_form(driver, action("approve_plan")), title=plan_title, evaluation_interval_months="6")

    # Jilin assigns a task in it, MOFCOM supporting, schedules a milestone, reports progress and
    # an issue, and asks MOFCOM for support.
    sign_in(browser, web.url, "JILIN", "implementer", "u-jilin-development-office")
    driver.get(f"{web.url}/plan")
    fill_and_send(
        driver,
        open_form(driver, action("create_task", plan_title)),
        title=task_title,
        field="trade",
        lead_department="JILIN",
        supporting_departments=["MOFCOM"],
        due="2027-12-31",
    )
    driver.get(f"{web.url}/")
    row = until(
        driver, lambda d: d.find_elements(By.XPATH, f"//tr[td/a[normalize-space()='{task_title}']]"), "the task"
    )
    task_id = row[0].get_attribute("data-task")
    assert "2027年12月31日" in row[0].text, "a due date as people write it, on Beijing time"
    task_page = f"{web.url}/tasks/{task_id}"
    driver.get(task_page)
    fill_and_send(driver, open_form(driver, action("schedule_milestone")), title="海关监管方案获批", due="2027-06-30")
    fill_and_send(driver, open_form(driver, action("report_progress")), percent="30", note="平台主体工程开工")
    fill_and_send(driver, open_form(driver, action("report_issue")), title="跨境数据传输规则待明确", severity="major")
    fill_and_send(
        driver,
        open_form(driver, action("request_support", "跨境数据传输规则待明确")),
        departments=["MOFCOM"],
        need="请商务部就跨境电商数据出境规则给予指导。",
        by="2027-03-31",
    )
    browser.screenshot("task-act")

    # MOFCOM finds the request on its to-do list, acknowledges it and answers it.
    sign_in(browser, web.url, "MOFCOM", "supporter", "u-mofcom-asia-dept")
    driver.get(f"{web.url}/todo")
    todo = until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'#todo tr[data-task="{task_id}"]'), "the to-do")
    assert "确认收到支持请求" in todo[0].text and int(text_of(driver, "todo-count")) >= 1
    browser.screenshot("todo")
    todo[0].find_element(By.TAG_NAME, "a").click()
    fill_and_send(driver, open_form(driver, action("acknowledge_support")))
    fill_and_send(driver, open_form(driver, action("answer_support")), answer="已会同海关总署出具指导意见。")

    # Jilin closes the request, marks the milestone met and asks the State Council's approval.
    sign_in(browser, web.url, "JILIN", "implementer", "u-jilin-development-office")
    driver.get(task_page)
    fill_and_send(driver, open_form(driver, action("close_support")), note="指导意见已落实")
    # The milestone is met on the strength of a document: attached, then downloaded as it was.
    acceptance = tmp_path / "海关监管方案批复.pdf"
    acceptance.write_bytes(b"%PDF-1.7\n%" + "海关总署批复".encode() + b"\n" + b"0" * 20_000 + b"\n%%EOF\n")
    fill_and_send(driver, open_form(driver, action("mark_milestone_met", "海关监管方案获批")), evidence=str(acceptance))
    link = driver.find_element(By.CSS_SELECTOR, "#evidence-files a")
    assert link.text == acceptance.name and "里程碑完成：海关监管方案获批" in text_of(driver, "evidence-files")
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    async with httpx.AsyncClient(cookies=cookies, timeout=30) as client:
        downloaded = await client.get(link.get_attribute("href"))
    assert downloaded.status_code == 200 and downloaded.content == acceptance.read_bytes()
    assert downloaded.headers["content-type"] == "application/pdf"
    sha256 = hashlib.sha256(acceptance.read_bytes()).hexdigest()
    assert link.get_attribute("href").endswith(sha256)
    fill_and_send(
        driver, open_form(driver, action("request_approval")), kind="policy", title="跨境电商零售进口监管政策"
    )

    # The State Council decides it from its to-do list.
    sign_in(browser, web.url, "SC", "approver", "u-sc-general-office")
    driver.get(f"{web.url}/todo")
    until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'#todo tr[data-task="{task_id}"] a'), "the approval")[
        0
    ].click()
    fill_and_send(driver, open_form(driver, action("decide_approval")), granted="granted", reason="同意。")

    # Jilin completes the task; the NDRC evaluates it and submits its report.
    sign_in(browser, web.url, "JILIN", "implementer", "u-jilin-development-office")
    driver.get(task_page)
    # While the form is open, a colleague reports through the province's own system: the form is
    # refused as filled against an older version, and that report is what the page marks.
    progress = open_form(driver, action("report_progress"))
    progress.find_element(By.CSS_SELECTOR, '[name="percent"]').send_keys("100")
    anchor = progress.get_attribute("id")
    async with httpx.AsyncClient(timeout=30) as client:
        meanwhile = await client.post(
            f"{system['tasks'].url}/v1/tasks/{task_id}/progress",
            json={"percent": 95, "note": "主体工程竣工验收"},
            headers=JILIN | {"Idempotency-Key": f"meanwhile-{run}"},
        )
    assert meanwhile.status_code < 300, meanwhile.text
    on_the_next_page(driver, progress.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click, "a stale form")
    until(driver, lambda d: d.find_elements(By.ID, "changed"), "the form refused as stale")
    marked = {row.get_attribute("data-kind"): row.text for row in until(driver, changed_rows, "what changed")}
    assert "主体工程竣工验收" in marked.get("task.progress_reported", ""), marked
    fill_and_send(driver, driver.find_element(By.ID, anchor), percent="100")
    fill_and_send(driver, open_form(driver, action("complete_task")), note="按期建成")
    assert driver.find_element(By.ID, "status").get_attribute("data-status") == "completed"
    sign_in(browser, web.url, "NDRC", "supervisor", "u-ndrc-regional-dept")
    driver.get(task_page)
    fill_and_send(driver, open_form(driver, action("record_evaluation")), rating="good", findings="建设成效明显。")
    driver.get(f"{web.url}/report")
    driver.find_element(By.CSS_SELECTOR, "#submit-report button").click()
    until(driver, lambda d: d.find_elements(By.ID, "submitted"), "the report submitted")
    digest = text_of(driver, "submitted").rsplit("：", 1)[-1].strip()
    assert len(digest) == 64
    browser.screenshot("report-submitted")
    # The formal document of the same period: in Chinese, with the hash that was submitted.
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    async with httpx.AsyncClient(cookies=cookies, timeout=60) as client:
        document = await client.get(driver.find_element(By.ID, "report-pdf").get_attribute("href"))
    assert document.status_code == 200 and document.headers["content-type"] == "application/pdf"
    text = subprocess.run(["pdftotext", "-", "-"], input=document.content, capture_output=True, check=True).stdout
    flat = re.sub(r"\s+", "", text.decode())
    assert "关于总体方案实施情况的报告" in flat and digest in flat

    # The trail holds each act under the department that did it.
    expected = [
        ("task.created", "JILIN"),
        ("milestone.scheduled", "JILIN"),
        ("task.progress_reported", "JILIN"),
        ("issue.reported", "JILIN"),
        ("support_request.requested", "JILIN"),
        ("support_request.acknowledged", "MOFCOM"),
        ("support_request.answered", "MOFCOM"),
        ("support_request.closed", "JILIN"),
        ("milestone.met", "JILIN"),
        ("approval.requested", "JILIN"),
        ("approval.granted", "SC"),
        ("task.completed", "JILIN"),
        ("evaluation.recorded", "NDRC"),
    ]

    async def trail() -> list[tuple[str, str]] | None:
        async with httpx.AsyncClient(base_url=system["audit"].url, timeout=60) as client:
            items = (
                await client.get("/v1/audit/events", headers=NAO, params={"task_id": task_id, "limit": 500})
            ).json()["items"]
        acts = [
            (e["type"].removeprefix("org.policytrack.").rsplit(".", 1)[0], e.get("actordept"))
            for e in (item["event"] for item in items)
            if e and e.get("actor", "").startswith("u-")
        ]
        return acts if all(pair in acts for pair in expected) else None

    acts = await eventually(trail, timeout=60, what="every act on the trail")
    firsts = list(dict.fromkeys(pair for pair in acts if pair in expected))
    assert firsts == expected, "in the order they were done"
    async with httpx.AsyncClient(base_url=system["audit"].url, timeout=60) as client:
        met = (
            await client.get("/v1/audit/events", headers=NAO, params={"task_id": task_id, "type": "milestone.met"})
        ).json()["items"]
    assert [e["sha256"] for e in met[0]["event"]["data"]["evidence"]] == [sha256], "the file's hash is on the trail"
    assert browser.requested_hosts() == {"127.0.0.1"}


def task_sheet(path: Path, *rows: list[Any]) -> Path:
    book = openpyxl.Workbook()
    page = book.active
    assert page is not None
    page.append(["任务", "合作领域", "牵头单位", "配合单位", "截止日期"])
    for row in rows:
        page.append(row)
    book.save(path)
    return path


async def test_a_plans_tasks_come_in_from_a_sheet_checked_row_by_row(
    system: dict[str, Any], browser: Browser, tmp_path: Path
) -> None:
    web, driver = system["web"], browser.driver
    run = uuid.uuid4().hex[:6]
    async with httpx.AsyncClient(base_url=system["tasks"].url, timeout=30) as client:
        plan = await client.post("/v1/plans", headers=SC, json={"title": f"中韩合作示范区分解方案 {run}"})
    assert plan.status_code == 201, plan.text
    rows = [
        [f"跨境电商试验区 {run}", "贸易", "吉林省人民政府", "商务部、海关总署", "2027-12-31"],
        [f"氢能产业集群 {run}", "农业", "吉林省人民政府", "", "2028-06-30"],
    ]
    bad = task_sheet(tmp_path / "分解任务.xlsx", *rows)
    sign_in(browser, web.url, "JILIN", "implementer", "u-jilin-development-office")
    driver.get(f"{web.url}/plan")

    def send(sheet: Path, button: str) -> None:
        Select(driver.find_element(By.ID, "import-plan")).select_by_value(plan.json()["id"])
        driver.find_element(By.ID, "import-sheet").send_keys(str(sheet))
        # The page before may hold a report already: wait for the new page, not that one.
        on_the_next_page(driver, lambda: driver.find_element(By.ID, button).click(), "the page after the sheet")
        until(driver, lambda d: d.find_elements(By.ID, "import-report"), "the sheet's report")

    send(bad, "import-run")
    assert driver.find_elements(By.CSS_SELECTOR, '#import-rows tr[data-cell="B3"]'), "the bad cell is named"
    assert "不是合作领域" in text_of(driver, "import-rows")
    rows[1][1] = "产业"
    fixed = task_sheet(tmp_path / "分解任务（改）.xlsx", *rows)
    send(fixed, "import-check")
    assert driver.find_elements(By.ID, "import-ready")
    send(fixed, "import-run")
    assert driver.find_elements(By.ID, "import-done") and text_of(driver, "import-rows").count("已创建") == 2
    send(fixed, "import-run")
    assert text_of(driver, "import-rows").count("方案中已有") == 2, "importing the same sheet again changes nothing"
    driver.get(f"{web.url}/")
    for title in (rows[0][0], rows[1][0]):
        until(driver, partial(row_titled, title), title)


async def test_an_official_puts_the_deadlines_in_a_calendar_and_the_alerts_in_a_mailbox(
    system: dict[str, Any], browser: Browser, system_mailroom: Mailroom
) -> None:
    web, driver, ids = system["web"], browser.driver, system["ids"]
    sign_in(browser, web.url, "MIIT", "supporter", "u-miit-planning-dept")
    driver.get(f"{web.url}/reminders")
    assert driver.find_element(By.TAG_NAME, "h1").text == "提醒"
    driver.find_element(By.CSS_SELECTOR, "#make-calendar-link button[type=submit]").click()
    link = until(driver, lambda d: d.find_elements(By.ID, "calendar-link"), "the new calendar address")[0]
    address = link.get_attribute("value")
    assert address.startswith(f"{web.url}/calendar/") and address.endswith(".ics")

    # What a calendar client does: read the address, no token; it holds what MIIT supports only.
    async with httpx.AsyncClient() as client:
        feed = await client.get(address)
        assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
        uids = {str(event["uid"]) for event in Calendar.from_ical(feed.content).walk("VEVENT")}
        assert f"task-{ids['industry']}@policytrack" in uids, "MIIT supports the industry task"
        tasks = {
            key: (
                await client.get(
                    f"{system['tasks'].url}/v1/tasks/{ids[key]}", headers={"Authorization": f"Bearer {token_for('sc')}"}
                )
            ).json()
            for key, *_ in TASKS
        }
        not_ours = [
            key
            for key, task in tasks.items()
            if "MIIT" not in (task["lead_department"], *task["supporting_departments"])
        ]
        assert not_ours and not any(f"task-{ids[key]}@policytrack" in uids for key in not_ours)

        # Alerts by mail: a wrong address is told on the page, a right one is kept.
        mail_form = driver.find_element(By.ID, "subscribe-mailbox")
        mail_form.find_element(By.ID, "mail-address").send_keys("not an address")
        mail_form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        until(driver, lambda d: d.find_elements(By.ID, "mail-error"), "the address refused")
        field = driver.find_element(By.ID, "mail-address")
        field.clear()
        field.send_keys("planning@miit.example")
        driver.find_element(By.CSS_SELECTOR, "#subscribe-mailbox button[type=submit]").click()
        row = until(
            driver,
            lambda d: d.find_elements(By.XPATH, "//table[@id='mailboxes']//td[.='planning@miit.example']"),
            "the mailbox",
        )
        assert row

        # Revoked, the address answers 404 to the calendar client.
        driver.find_element(By.XPATH, "//table[@id='feeds']//form[contains(@action, '/revoke')]//button").click()
        until(driver, lambda d: not d.find_elements(By.ID, "feeds"), "the revoked address gone from the list")
        assert (await client.get(address)).status_code == 404


AXE = Path(axe_selenium_python.__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")
WIDEST_ELEMENT = """
let worst = null;
for (const e of document.querySelectorAll('main *')) {
  const r = e.getBoundingClientRect();
  if (r.right > window.innerWidth + 1 && (!worst || r.right > worst.r))
    worst = {r: r.right, tag: e.tagName, id: e.id, cls: e.className};
}
return JSON.stringify(worst);
"""


def described(violation: dict[str, Any]) -> str:
    """A violation as someone fixing it needs it: the rule, and where, with axe's own summary."""
    nodes = violation["nodes"]
    where = "; ".join(f"{n['target']} {n.get('failureSummary', '')[:160]}" for n in nodes[:3])
    return f"{violation['id']} ({len(nodes)}): {where}"


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it stands."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "var done = arguments[arguments.length - 1]; axe.run().then(done, e => done({error: String(e)}));"
    )
    assert "error" not in result, result
    return [v for v in result["violations"] if v.get("impact") in SERIOUS]


async def test_every_page_passes_the_accessibility_check_on_a_desk_and_a_phone(
    system: dict[str, Any], browser: Browser
) -> None:
    web, driver = system["web"], browser.driver
    task_id = system["ids"]["industry"]
    pages = [
        "/",
        "/responsibility",
        "/todo",
        "/plan",
        "/alerts",
        "/reminders",
        "/trail",
        "/report",
        f"/tasks/{task_id}",
    ]
    found: dict[str, list[str]] = {}
    for width, height in ((1280, 1000), (390, 844)):
        driver.set_window_size(width, height)
        driver.get(f"{web.url}/signin")
        found |= {f"/signin @{width}": [described(v) for v in axe_violations(driver)]}
        sign_in(browser, web.url, "NDRC", "supervisor", "u-ndrc-regional-dept")
        for page in pages:
            driver.get(f"{web.url}{page}")
            until(driver, lambda d: d.find_elements(By.TAG_NAME, "main"), page)
            found[f"{page} @{width}"] = [described(v) for v in axe_violations(driver)]
            wider = driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth + 1")
            if width == 390 and wider:
                widest = driver.execute_script(WIDEST_ELEMENT)
                found[f"{page} @{width}"].append(f"the page is wider than the screen: {widest}")
    failing = [f"{page}: {problem}" for page, problems in found.items() for problem in problems]
    if failing:
        pytest.fail("\n".join(failing), pytrace=False)
