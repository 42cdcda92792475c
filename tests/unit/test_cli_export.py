"""The CLI's export keeps each entry of the trail whole: a line of NDJSON ends at a newline
only, not at the other characters str.splitlines ends lines at, which a JSON string may hold
raw (U+2028 in a title the fuzzer sent was cut in two, and the export no longer parsed)."""

from __future__ import annotations

import io

import httpx
import orjson

from policytrack.trail import stream_export

ENTRIES = [{"seq": 1, "title": "line\u2028separator"}, {"seq": 2, "title": "next\u0085line\u2029para"}]


def audit(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/readyz":
        return httpx.Response(200, json={"entries": len(ENTRIES)})
    body = b"".join(orjson.dumps(entry) + b"\n" for entry in ENTRIES)
    return httpx.Response(200, content=body, headers={"content-type": "application/x-ndjson"})


def test_every_entry_arrives_whole_whatever_its_text_holds() -> None:
    out = io.BytesIO()
    with httpx.Client(transport=httpx.MockTransport(audit), base_url="http://audit") as client:
        written = stream_export(client, {}, "ndjson", out, True)
    assert written == len(ENTRIES)
    assert [orjson.loads(line) for line in out.getvalue().split(b"\n") if line] == ENTRIES
