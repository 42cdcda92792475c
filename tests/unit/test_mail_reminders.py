"""What a reminder by mail says and who gets the daily digest: plain data, no server."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from services.notifications.adapters.mail import Mailer, SmtpSettings
from services.notifications.domain.digest import daily_digests, digest_items
from services.notifications.domain.mail_text import mail_text
from services.notifications.domain.schedule import Policy, Schedule
from services.notifications.domain.subscriptions import Mailbox, Subscription, Webhook, masked_address
from shared.contract import catalog as c
from shared.contract.codes import CooperationField, Department
from shared.contract.envelope import new_event

NOW = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)  # 07:30 on 5 December in Beijing


def schedule_with_work() -> Schedule:
    schedule = Schedule(Policy())
    for data in (
        c.TaskCreated(
            task_id="t-soon",
            plan_id="p",
            title="Bonded zone",
            field=CooperationField.TRADE,
            due=NOW + timedelta(days=3),
        ),
        c.TaskAssigned(task_id="t-soon", lead_department=Department.JILIN, supporting_departments=(Department.GACC,)),
        c.TaskCreated(
            task_id="t-far",
            plan_id="p",
            title="Green corridor",
            field=CooperationField.ENVIRONMENT,
            due=NOW + timedelta(days=60),
        ),
        c.TaskAssigned(task_id="t-far", lead_department=Department.JILIN),
        c.MilestoneScheduled(task_id="t-far", milestone_id="m-late", title="Stations", due=NOW - timedelta(days=1)),
        c.SupportRequested(
            request_id="r-1",
            task_id="t-far",
            issue_id="i-1",
            departments=(Department.GACC,),
            need="Customs",
            by=NOW + timedelta(days=20),
        ),
    ):
        schedule.apply(new_event(data, actor="u-jilin", time=NOW - timedelta(days=2)))
    return schedule


def test_an_alert_is_mailed_in_chinese_by_default_with_the_beijing_time() -> None:
    alert = c.DeadlineDue(
        alert_id="a-1",
        task_id="t-soon",
        milestone_id="m-1",
        title="Bonded zone",
        due=NOW,
        departments=(Department.JILIN,),
    )
    text = mail_text(alert, "zh-CN", "sub-1")
    assert text.subject == "[policytrack] 今日到期: Bonded zone" and text.language == "zh-CN"
    assert "截止时间：2026年12月5日 07:30（北京时间）" in text.body, text.body
    assert "吉林省人民政府" in text.body and "sub-1" in text.body
    english = mail_text(alert, "en", "sub-1")
    assert "December 5, 2026 07:30 (Beijing time)" in english.body and english.language == "en"


def test_the_digest_lists_what_is_late_due_within_a_week_and_awaiting_an_answer() -> None:
    schedule = schedule_with_work()
    jilin = [(i.kind, i.milestone_id or i.task_id) for i in digest_items(schedule, Department.JILIN, NOW)]
    assert jilin == [("late", "m-late"), ("due_soon", "t-soon")], "the task due in 60 days is not in it"
    gacc = [(i.kind, i.request_id or i.task_id) for i in digest_items(schedule, Department.GACC, NOW)]
    assert gacc == [("due_soon", "t-soon"), ("awaiting_answer", "r-1")]


def test_one_digest_a_department_a_day_from_the_hour_set_in_beijing() -> None:
    schedule = schedule_with_work()
    assert daily_digests(schedule, {Department.JILIN}, NOW, time(8)) == [], "07:30 in Beijing: not yet"
    at_eight = NOW + timedelta(minutes=30)
    [digest] = daily_digests(
        schedule, {Department.JILIN, Department.MOFA}, at_eight, time(8)
    )  # MOFA has nothing: no digest
    assert digest.department == "JILIN" and str(digest.day) == "2026-12-05"
    schedule.emitted.add(digest.alert_id)
    assert daily_digests(schedule, {Department.JILIN}, at_eight + timedelta(hours=3), time(8)) == []
    [tomorrow] = daily_digests(schedule, {Department.JILIN}, at_eight + timedelta(days=1), time(8))
    assert tomorrow.alert_id != digest.alert_id


def test_a_digest_goes_to_mail_readers_who_want_it_never_to_a_webhook_that_did_not_ask() -> None:
    [digest] = daily_digests(schedule_with_work(), {Department.JILIN}, NOW + timedelta(hours=1), time(8))
    before = NOW - timedelta(days=1)

    def subscription(endpoint: Webhook | Mailbox, types: frozenset[str] = frozenset()) -> Subscription:
        return Subscription("sub-1", Department.JILIN, None, types, endpoint, before, "u-jilin")

    assert subscription(Mailbox("office@jilin.example", "zh-CN", digest=True)).wants(digest, NOW)
    assert not subscription(Mailbox("office@jilin.example", "zh-CN", digest=False)).wants(digest, NOW)
    assert not subscription(Webhook("https://hooks.example/in", "whsec_x")).wants(digest, NOW)
    asked = frozenset({c.DailyDigest.event_type})
    assert subscription(Webhook("https://hooks.example/in", "whsec_x"), asked).wants(digest, NOW)


def test_the_trail_shows_an_address_masked() -> None:
    assert masked_address("wang.fang@jl.gov.cn") == "w***@jl.gov.cn"


def test_a_title_with_line_breaks_stays_on_the_subject_line() -> None:
    """A title is what a department typed; its line breaks must not start headers of their own."""
    alert = c.DeadlineDue(
        alert_id="a-2",
        task_id="t-soon",
        title="Bonded zone\r\nBcc: spy@example.org\n\nforged body",
        due=NOW,
        departments=(Department.JILIN,),
    )
    mailer = Mailer(SmtpSettings(host="127.0.0.1"))
    message = mailer.message(Mailbox("jilin@example.org", "zh-CN", False), new_event(alert, actor="notifications"), "s")
    wire = message.as_bytes()
    assert message["Bcc"] is None and b"\nBcc:" not in wire
    assert message["Subject"] == "[policytrack] 今日到期: Bonded zone Bcc: spy@example.org forged body"
