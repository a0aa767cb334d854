"""The gateway's own errors: every status its error pages answer has a row in the JSON table.

The answers themselves are checked against a running NGINX in tests/faults/test_gateway_errors.py;
this catches a status added to ``error_page`` without a row (it would answer "http_error").
"""

from __future__ import annotations

import json
import re
from pathlib import Path


def answered_statuses(template: str) -> set[int]:
    """The statuses the error pages answer with: each listed one, or its ``=NNN`` replacement."""
    answered = set()
    for line in re.findall(r"^\s*error_page\s+([^;]+);", template, re.MULTILINE):
        *codes, _target = line.split()
        replacement = next((int(code[1:]) for code in codes if code.startswith("=")), None)
        listed = {int(code) for code in codes if code.isdigit()}
        answered |= {replacement} if replacement else listed
    return answered


def error_rows(template: str) -> dict[str, dict[str, str]]:
    """``map $status $gateway_error``'s rows: status (or "default") -> {code, message}."""
    block = re.search(r"map \$status \$gateway_error \{(.*?)\n\}", template, re.DOTALL)
    assert block, "gateway/nginx.conf.template has no map $status $gateway_error"
    rows = re.findall(r"^\s*(\d{3}|default)\s+'(.*)';$", block.group(1), re.MULTILINE)
    return {status: json.loads("{" + fragment + "}") for status, fragment in rows}


def test_parsing() -> None:
    template = """
  error_page 400 404 /_gateway/error;
  error_page 494 =431 /_gateway/error;
map $status $gateway_error {
  404 '"code":"not_found","message":"No such route"';
  default '"code":"http_error","message":"Request failed"';
}
"""
    assert answered_statuses(template) == {400, 404, 431}
    assert error_rows(template)["404"] == {"code": "not_found", "message": "No such route"}


def test_every_status_the_gateway_answers_has_a_json_row(repo_root: Path) -> None:
    template = (repo_root / "gateway/nginx.conf.template").read_text()
    rows = error_rows(template)
    assert answered_statuses(template) - {int(status) for status in rows if status.isdigit()} == set()
    for status, row in rows.items():
        assert set(row) == {"code", "message"} and re.fullmatch(r"[a-z_]+", row["code"]), (status, row)
        assert row["message"], status
