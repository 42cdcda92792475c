"""The checked-in JSON Schemas and AsyncAPI document are exactly what the models generate."""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.contract.catalog import CATALOG
from shared.contract.generate import render, write
from shared.settings import PROJECT_ROOT


def test_checked_in_contract_is_up_to_date(tmp_path: Path) -> None:
    write(tmp_path)
    generated = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    checked_in = {p.relative_to(PROJECT_ROOT) for p in (PROJECT_ROOT / "contract").rglob("*") if p.is_file()}
    assert generated - {Path("docs/event-catalog.md")} == checked_in, "contract/ is stale: run `make contract`"
    for relative in generated:
        assert (tmp_path / relative).read_text() == (PROJECT_ROOT / relative).read_text(), (
            f"{relative} is stale: run `make contract` and commit the result"
        )


def test_every_event_type_has_a_schema_and_an_asyncapi_message() -> None:
    files = render()
    document = yaml.safe_load(files["contract/asyncapi.yaml"])
    assert document["asyncapi"] == "3.0.0"
    assert {c["address"] for c in document["channels"].values()} == {
        "policy.commands",
        "policy.events",
        "policy.alerts",
        "policy.deadletter",
        "policy.audit",
    }
    named = {m["name"] for m in document["components"]["messages"].values()}
    for event_type in CATALOG:
        assert f"contract/schemas/{event_type}.json" in files
        assert event_type in named


def test_asyncapi_references_resolve() -> None:
    document = yaml.safe_load(render()["contract/asyncapi.yaml"])

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(document):
        target: object = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, f"dangling reference {ref}"
            target = target[part]
