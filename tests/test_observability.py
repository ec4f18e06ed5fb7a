"""Logs carry session ids and no secrets; /metrics is for staff or the metrics token only."""

import json
import logging

import pytest

from assistant import metrics
from pastra_site.logs import ContextFilter, JsonFormatter, bind, unbind


def test_json_log_lines_carry_the_bound_session_ids():
    token = bind(conversation="c-1", user=7)
    try:
        record = logging.LogRecord(
            "assistant.live", logging.INFO, __file__, 1, "turn %s", (3,), None
        )
        ContextFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        unbind(token)
    assert line["message"] == "turn 3"
    assert (line["conversation"], line["user"], line["level"]) == ("c-1", "7", "INFO")


def test_ids_do_not_leak_to_records_after_unbind():
    unbind(bind(conversation="c-2"))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    ContextFilter().filter(record)
    assert "conversation" not in json.loads(JsonFormatter().format(record))


@pytest.mark.django_db
def test_metrics_refuses_anonymous_and_ordinary_users(client, alice):
    assert client.get("/metrics").status_code == 403
    client.force_login(alice)
    assert client.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_metrics_serves_prometheus_text_to_staff(client, staff):
    metrics.CLOSES.labels("web", "1000").inc()
    client.force_login(staff)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert 'pastra_closes_total{code="1000",path="web"}' in body
    assert "pastra_live_sessions" in body


@pytest.mark.django_db
def test_metrics_accepts_the_bearer_token_and_rejects_a_wrong_one(client, settings):
    settings.PASTRA_METRICS_TOKEN = "s3cret-metrics"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics")
    assert ok.status_code == 200
    assert b"pastra_messages_total" in ok.content
