"""The notifications edge in process: who may subscribe and unsubscribe (every department and
role), hostile webhook addresses answered 422, and no webhook reaching a private address,
whatever the resolver answers."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.notifications.adapters.addresses import AddressPolicy, check_url
from services.notifications.domain.subscriptions import SubscriptionBody
from shared.auth import Actor
from shared.contract import catalog as c
from shared.contract.codes import Department, Role
from shared.contract.envelope import AnyEvent, new_event
from tests.conftest import NDRC, SC, Receiver, eventually, token
from tests.fakes import InProcessNotifications, in_process_notifications

PUBLIC = "93.184.215.14"
PRODUCTION = AddressPolicy(dev=False, allow_private=False, allowed_hosts=frozenset())


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.100.100.200",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fd00::1",
        "fec0::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "192.0.2.1",
        # Issue 28: IPv6 addresses that carry a private IPv4 one, and IPv6 outside global unicast.
        "::127.0.0.1",
        "::10.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
        "2002:c0a8:101::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "64:ff9b:1::1",
        "100::1",
        "3fff::1",
    ],
)
def test_no_address_that_is_not_public_is_called(address: str) -> None:
    assert PRODUCTION.refusal("hooks.example.org", [address]) is not None
    assert PRODUCTION.refusal("hooks.example.org", [PUBLIC, address]) is not None, "one bad address is enough"


def test_public_addresses_are_called_and_loopback_only_in_development() -> None:
    assert PRODUCTION.refusal("hooks.example.org", [PUBLIC, "2606:4700:4700::1111"]) is None
    assert PRODUCTION.refusal("hooks.example.org", ["64:ff9b::808:808", "2002:808:808::1"]) is None, (
        "a NAT64 or 6to4 address of a public IPv4 address is public"
    )
    development = AddressPolicy(dev=True, allow_private=False, allowed_hosts=frozenset())
    assert development.refusal("localhost", ["127.0.0.1", "::1"]) is None
    assert development.refusal("internal", ["10.0.0.1"]) is not None


async def test_a_resolver_answering_public_then_loopback_is_refused() -> None:
    async def public_then_loopback(host: str, port: int) -> list[str]:
        return [PUBLIC, "127.0.0.1"]

    assert await check_url("https://hooks.example.org/x", PRODUCTION, public_then_loopback) is not None


async def test_dns_rebinding_never_reaches_the_private_address(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host resolves to a public address when checked and to loopback the next time: a
    second resolution would connect to loopback. There is no second resolution."""
    answers = iter([PUBLIC, "127.0.0.1", "127.0.0.1", "127.0.0.1"])
    real = socket.getaddrinfo

    def rebinding(host: str, port: object, *args: object, **kwargs: object) -> list[Any]:
        if host != "rebind.example.org":
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers, "127.0.0.1"), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    async with in_process_notifications(dev=False) as notifications:
        service = notifications.service
        url = f"http://rebind.example.org:{receiver.port}/hooks/policytrack"
        subscription, _ = await service.subscribe(_body(url), _actor("NDRC", "supervisor"))
        await service.go_live()
        await service.on_event(_alert(subscription.created_at + timedelta(seconds=1)))
        await eventually(lambda: _failed(notifications), timeout=20, what="the delivery given up")
    assert receiver.received == [], "the webhook reached loopback"


async def test_a_cookie_one_subscriber_s_endpoint_sets_never_goes_to_another(receiver: Receiver) -> None:
    """Deliveries share one HTTP client, and a hosted receiver serves many subscribers under one
    host: what it sets in answer to one subscriber's delivery must not go out with another's
    (nor with the next of the same: a delivery carries the alert and its signature only)."""
    receiver.sets_cookie = "session=alice-only; Path=/"

    async def hosted(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async with in_process_notifications(resolve=hosted) as notifications:
        service = notifications.service
        hooks = f"http://hooks.example.org:{receiver.port}/u"
        alice, _ = await service.subscribe(_body(f"{hooks}/alice"), _user("u-ndrc-alice"))
        await service.go_live()
        first = alice.created_at + timedelta(seconds=1)
        await service.on_event(_alert(first, "al-first"))
        await eventually(lambda: _delivered(notifications, 1), timeout=20, what="the first delivery")
        await service.subscribe(_body(f"{hooks}/bob"), _user("u-ndrc-bob"))
        await service.on_event(_alert(first + timedelta(seconds=1), "al-second"))
        await eventually(lambda: _delivered(notifications, 3), timeout=20, what="the second alert to both")
    sent_cookies = [headers.get("cookie") for _, headers, _ in receiver.received]
    assert sent_cookies == [None, None, None], "a receiver's cookie was sent on"


async def test_a_host_label_over_63_characters_is_422_not_500() -> None:
    async with in_process_notifications() as notifications:
        response = await notifications.client.post(
            "/v1/subscriptions", headers=NDRC, json={"webhook_url": f"https://{'a' * 70}.example.org/hooks"}
        )
    assert response.status_code == 422, response.text
    assert "webhook_url" in [e["field"] for e in response.json()["errors"]]


# --- who may subscribe and unsubscribe -------------------------------------------------------------

WRITING_ROLES = {Role.IMPLEMENTER, Role.SUPPORTER, Role.SUPERVISOR, Role.APPROVER, Role.ADMIN}


@pytest.mark.parametrize("department", list(Department))
async def test_each_department_and_role_subscribes_for_itself_and_auditors_never(department: Department) -> None:
    async with in_process_notifications() as notifications:
        for role in Role:
            headers = token(f"u-{department}-{role}", department, role)
            own = await notifications.client.post(
                "/v1/subscriptions", headers=headers, json={"webhook_url": "http://127.0.0.1:9/hooks"}
            )
            other = Department.MEE if department != Department.MEE else Department.GACC
            foreign = await notifications.client.post(
                "/v1/subscriptions",
                headers=headers,
                json={"webhook_url": "http://127.0.0.1:9/hooks", "department": other},
            )
            expected_own = 201 if role in WRITING_ROLES else 403
            assert own.status_code == expected_own, (department, role, own.text)
            assert foreign.status_code == (201 if role is Role.ADMIN else 403), (department, role, foreign.text)


async def test_a_subscription_is_removed_only_by_its_maker_its_department_or_an_admin() -> None:
    async with in_process_notifications() as notifications:
        outcomes = {}
        for department in Department:
            for role in Role:
                made = await notifications.client.post(
                    "/v1/subscriptions", headers=SC, json={"webhook_url": "http://127.0.0.1:9/hooks"}
                )
                subscription = made.json()["id"]
                removed = await notifications.client.delete(
                    f"/v1/subscriptions/{subscription}", headers=token(f"u-{department}-{role}", department, role)
                )
                outcomes[(department, role)] = removed.status_code
        allowed = {case for case, status in outcomes.items() if status == 204}
        expected = {(Department.SC, role) for role in WRITING_ROLES} | {(d, Role.ADMIN) for d in Department}
        assert allowed == expected
        assert outcomes[(Department.NAO, Role.AUDITOR)] == 403, "a reader of everything is not a writer"
        assert outcomes[(Department.JILIN, Role.IMPLEMENTER)] == 403
        assert outcomes[(Department.MEE, Role.SUPPORTER)] == 404, "what one may not see is not found"


def _body(url: str) -> SubscriptionBody:
    return SubscriptionBody.model_validate({"webhook_url": url})


def _actor(department: str, role: str) -> Actor:
    return Actor(user=f"u-{department.lower()}", department=Department(department), roles=frozenset({Role(role)}))


def _user(user: str) -> Actor:
    return Actor(user=user, department=Department.NDRC, roles=frozenset({Role.SUPERVISOR}))


def _alert(at: datetime, alert_id: str = "al-rebind") -> AnyEvent:
    alert = c.DeadlineOverdue(
        alert_id=alert_id, task_id="t-1", title="Bonded zone", due=at, departments=(Department.JILIN,)
    )
    return new_event(alert, actor="policytrack-notifications", id=alert_id, time=at)


async def _delivered(notifications: InProcessNotifications, count: int) -> bool:
    return sum(isinstance(e.data, c.AlertDelivered) for e in notifications.producer.published) >= count


async def _failed(notifications: InProcessNotifications) -> bool:
    return any(isinstance(e.data, c.AlertDeliveryFailed) for e in notifications.producer.published)
