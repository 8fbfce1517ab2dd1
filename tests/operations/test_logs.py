"""LOG_FORMAT=json: one JSON object per line, as a log collector reads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import logging, django
django.setup()
log = logging.getLogger("orgenv.example")
log.warning("a warning with %s", "an argument")
try:
    raise RuntimeError("it broke")
except RuntimeError:
    log.exception("a failure")
"""


def run_django(log_format: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "LOG_FORMAT": log_format}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_json_logs_are_one_object_per_line():
    result = run_django("json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line["level"], line["logger"], line["message"]) for line in lines] == [
        ("WARNING", "orgenv.example", "a warning with an argument"),
        ("ERROR", "orgenv.example", "a failure"),
    ]
    assert "RuntimeError: it broke" in lines[1]["exception"]
    assert lines[0]["time"].endswith("+00:00")


def test_text_logs_stay_plain_lines():
    result = run_django("text")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == "a warning with an argument"


def test_an_unknown_log_format_fails_at_start_up_naming_the_choices():
    result = run_django("xml")
    assert result.returncode != 0
    assert "LOG_FORMAT must be text or json, not 'xml'." in result.stderr
