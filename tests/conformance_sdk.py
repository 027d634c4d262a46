"""One step of the conformance table made with the Python SDK, and what the SDK showed.

It uses only the SDK's public API (no ``httpx2`` or ``httpx`` import), so it runs against every
release the project supports: the newest in ``.venv`` and the floor in ``.venv-floor``.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx

from conformance_table import Case, Step

#: How long any step may wait for a read unless its case says otherwise: a hang fails fast.
DEFAULT_TIMEOUT_S = 10.0


def plain(value: Any) -> Any:
    """An SDK model (or a list or page of them) as plain JSON data."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "has_more"):  # a page
        return {
            "data": plain(list(value.data)),
            "has_more": value.has_more,
            "first_id": value.first_id,
            "last_id": value.last_id,
        }
    return json.loads(value.to_json())


def outcome_of(exc: BaseException | None) -> dict[str, Any]:
    """The error part of an outcome: class, HTTP status, API error type, message, cause."""
    if exc is None:
        return {"error": None, "status": None, "error_type": None, "error_message": None}
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    cause = exc.__cause__
    return {
        "error": type(exc).__name__,
        "status": getattr(exc, "status_code", None),
        "error_type": error.get("type") if isinstance(error, dict) else None,
        "error_message": str(exc),
        "cause": type(cause).__name__ if cause is not None else None,
    }


def client_for(base_url: str, case: Case, step: Step, count: list[int]) -> anthropic.Anthropic:
    headers = {"x-tapedeck-test-id": case.test_id}
    if step.fault is not None and step.fault_scope == "request":
        headers["x-tapedeck-fault"] = step.fault
    if step.timing is not None:
        headers["x-tapedeck-timing"] = step.timing
    timeout_ms = step.client.get("timeout_ms")
    return anthropic.Anthropic(
        base_url=base_url,
        api_key="tapedeck-conformance",
        max_retries=step.client.get("max_retries", 0),
        timeout=timeout_ms / 1000 if timeout_ms is not None else DEFAULT_TIMEOUT_S,
        default_headers=headers,
        http_client=anthropic.DefaultHttpxClient(
            event_hooks={"request": [lambda _request: count.append(1)]}
        ),
    )


def perform(base_url: str, case: Case, step: Step) -> dict[str, Any]:
    """Make ``step``'s call against tapedeck at ``base_url``; what the SDK showed."""
    count: list[int] = []
    out: dict[str, Any] = {"events": None, "message": None, "text": None, "result": None}
    error: BaseException | None = None
    with client_for(base_url, case, step, count) as client:
        try:
            _call(client, step, out)
        except Exception as exc:  # the table says which exception, if any
            error = exc
    out.update(outcome_of(error))
    out.setdefault("cause", None)
    out["retries"] = len(count) - 1
    return out


def _call(client: anthropic.Anthropic, step: Step, out: dict[str, Any]) -> None:
    body = step.body
    if step.call == "stream":
        with client.messages.stream(**body) as stream:
            out["message"] = plain(stream.get_final_message())
            out["text"] = stream.get_final_text()
    elif step.call == "raw":
        out["events"] = events = []
        with client.messages.create(**body, stream=True) as raw:
            for event in raw:
                events.append(event.type)
    elif step.call == "create":
        out["message"] = plain(client.messages.create(**body))
    elif step.call == "count_tokens":
        out["result"] = plain(client.messages.count_tokens(**body))
    elif step.call == "models.list":
        out["result"] = plain(client.models.list(**body))
    elif step.call == "models.retrieve":
        out["result"] = plain(client.models.retrieve(body["model_id"]))
    elif step.call == "batches.create":
        out["result"] = plain(client.messages.batches.create(**body))
    elif step.call == "batches.retrieve":
        out["result"] = plain(client.messages.batches.retrieve(body["batch_id"]))
    elif step.call == "batches.list":
        out["result"] = plain(client.messages.batches.list(**body))
    elif step.call == "batches.results":
        out["result"] = plain(list(client.messages.batches.results(body["batch_id"])))
    else:  # pragma: no cover - conformance_table checks the call names
        raise AssertionError(step.call)


def reset(base_url: str, case: Case) -> None:
    """Rewind the case's sequences and fault counters, so a rerun starts clean."""
    headers = {"x-tapedeck-test-id": case.test_id}
    httpx.post(f"{base_url}/_tapedeck/reset", headers=headers).raise_for_status()


def set_test_faults(base_url: str, case: Case, spec: str | None) -> None:
    """Give the case's test id ``spec`` through the admin API (``None``: drop them)."""
    headers = {"x-tapedeck-test-id": case.test_id}
    url = f"{base_url}/_tapedeck/faults"
    if spec is None:
        httpx.delete(url, headers=headers).raise_for_status()
    else:
        httpx.put(url, json={"faults": spec}, headers=headers).raise_for_status()


def run(base_url: str, case: Case) -> list[dict[str, Any]]:
    """Every step of ``case``, in order, with the case's test id; their outcomes."""
    reset(base_url, case)
    scoped = {s.fault for s in case.steps if s.fault_scope == "test"}
    assert len(scoped) <= 1, f"{case.id}: one test-scoped fault spec per case"
    for spec in scoped:
        set_test_faults(base_url, case, spec)
    try:
        return [perform(base_url, case, step) for step in case.steps]
    finally:
        if scoped:
            set_test_faults(base_url, case, None)
