"""Schemathesis hooks for edgecount's fuzz run (scripts/schemathesis.mjs loads them).

They do what a test fixture does, never what the document should say:

- Every request comes from its own client address (CF-Connecting-IP, from the
  documentation ranges: a header value, never an address anything is sent to). The Worker
  keeps its shipped budgets and brakes, which a fuzzer sending everything from one address
  would turn into a test of the 429 answers alone; the document declares those 429s.
- Rules JSON Schema cannot state are met for schema-valid (positive) cases only, so
  those cases test what lies behind them: a history or stats range's order and length, a
  credential expiry in the future, and a counter with room for any delta the document
  allows (the fixture counter's max_delta is the largest there is, and its value is set to
  the lowest before each increment), and a set that moves the value by a safe integer at
  most (the counter is set to 0 first, from where any value is in reach).
- A created tenant's or counter's label is made unique, so creations are not all 409s.
- Destructive operations act on something that exists: a page is visited (created)
  before it is deleted, and a revocation revokes a key issued for it.
"""

from __future__ import annotations

import itertools
import os
import re
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

import requests
import schemathesis
from schemathesis.engine import observations as _observations

BASE_URL = os.environ["EDGECOUNT_URL"].rstrip("/")
ADMIN = {"X-API-Key": os.environ["EDGECOUNT_ADMIN_KEY"]}
TENANT_ID = os.environ["EDGECOUNT_TENANT_ID"]
INC_COUNTER_ID = os.environ["EDGECOUNT_INC_COUNTER_ID"]
CREDENTIAL_ID = os.environ["EDGECOUNT_CREDENTIAL_ID"]
ADMIN_CREDENTIAL_ID = os.environ["EDGECOUNT_ADMIN_CREDENTIAL_ID"]
MAX_SAFE = 9_007_199_254_740_991

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MAX_BUCKETS = 2_000  # domain::history::MAX_BUCKETS
STATS_MAX_DAYS = 400  # domain::stats::MAX_DAYS
LAST_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z

_addresses = itertools.count(1)
_labels = itertools.count(1)
_session = requests.Session()


def _client_address() -> str:
    """A new client for every request: 2001:db8::/32 is the documentation prefix, and the
    service counts an IPv6 client by its /64."""
    n = next(_addresses)
    return f"2001:db8:{(n >> 16) & 0xFFFF:x}:{n & 0xFFFF:x}::1"


def _fixture(method: str, path: str, **kwargs) -> requests.Response:
    headers = {**ADMIN, "CF-Connecting-IP": _client_address(), **kwargs.pop("headers", {})}
    return _session.request(method, BASE_URL + path, headers=headers, timeout=30, **kwargs)


def _positive(case) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|([+-])(\d{2}):(\d{2})))?$"
)


def _parse(text) -> int | None:
    """Unix ms, as domain::time::parse_rfc3339 reads the document's Time pattern."""
    if not isinstance(text, str):
        return None
    m = _TIME.match(text)
    if not m:
        return None
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    try:
        at = datetime(year, month, day, tzinfo=timezone.utc)
    except ValueError:
        return None
    ms = int((at - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()) * 1000
    if m[4] is not None:
        ms += (int(m[4]) * 3600 + int(m[5]) * 60 + int(m[6])) * 1000
        if m[7]:
            ms += int((m[7] + "00")[:3])
        if m[9]:
            sign = 1 if m[9] == "+" else -1
            ms -= sign * (int(m[10]) * 60 + int(m[11])) * 60_000
    return ms if ms >= 0 else None


def _format(ms: int) -> str:
    at = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _refused(from_ms: int, to_ms: int, bucket: int, stats: bool) -> bool:
    """domain::history::HistoryRange::parse and domain::stats::StatsQuery::parse."""
    if from_ms >= to_ms:
        return True
    start, end = from_ms // bucket * bucket, -(-to_ms // bucket) * bucket
    if (end - start) // bucket > MAX_BUCKETS:
        return True
    return stats and -(-end // DAY_MS) - start // DAY_MS > STATS_MAX_DAYS


def _fit_range(query: dict, stats: bool) -> None:
    """A range the service takes: `to` right after `from` (or `from` right before `to`)
    when the generated pair is out of order or too long."""
    bucket = HOUR_MS if query.get("granularity") == "hour" else DAY_MS
    now = int(time.time() * 1000)
    to_ms = _parse(query["to"]) if "to" in query else now
    from_ms = _parse(query["from"]) if "from" in query else max(to_ms - 30 * DAY_MS, 0)
    if to_ms is None or from_ms is None or not _refused(from_ms, to_ms, bucket, stats):
        return
    if "from" not in query:
        query["to"] = _format(DAY_MS)
    elif from_ms + HOUR_MS <= LAST_MS:
        query["to"] = _format(from_ms + HOUR_MS)
    else:
        query["from"], query["to"] = _format(LAST_MS - HOUR_MS), _format(LAST_MS)


@schemathesis.hook
def before_call(context, case, kwargs):
    case.headers = {**(case.headers or {}), "CF-Connecting-IP": _client_address()}
    operation = case.operation.definition.raw.get("operationId")
    path = case.path_parameters or {}

    if operation in ("increment", "incrementAlias", "v2Increment") and path.get("counter_id") == INC_COUNTER_ID:
        _fixture("POST", f"/tenants/{TENANT_ID}/counters/{INC_COUNTER_ID}/set", json={"value": -MAX_SAFE})

    if operation == "deletePage" and isinstance(path.get("page_id"), str):
        page = urllib.parse.quote(path["page_id"], safe="")
        _fixture("POST", f"/tenants/{path.get('tenant_id', TENANT_ID)}/pages/{page}/visit")

    # A revocation revokes a key issued for it, so the fixture keys stay live for rotations.
    if operation == "revokeCredential" and path.get("credential_id") == CREDENTIAL_ID:
        issued = _fixture("POST", f"/v2/tenants/{TENANT_ID}/credentials", json={})
        case.path_parameters = {**path, "credential_id": issued.json()["credential_id"]}
    if operation == "revokeCredentialAdmin" and path.get("credential_id") == ADMIN_CREDENTIAL_ID:
        issued = _fixture("POST", "/v2/admin/credentials", json={})
        case.path_parameters = {**path, "credential_id": issued.json()["credential_id"]}

    if not _positive(case):
        return

    if operation in ("setValue", "v2Set") and isinstance(path.get("counter_id"), str):
        tenant = path.get("tenant_id", TENANT_ID)
        _fixture("POST", f"/tenants/{tenant}/counters/{path['counter_id']}/set", json={"value": 0})

    # Labels are unique per tenant (and tenants' across the service): a generated label
    # seen before would test the 409 alone.
    if operation in ("createTenant", "createCounter", "createCounterAlias") and isinstance(case.body, dict):
        label = case.body.get("label")
        if isinstance(label, str):
            case.body["label"] = f"{label[:100]}-{next(_labels)}"

    if operation in ("stats", "pageHistory") and isinstance(case.query, dict):
        _fit_range(case.query, stats=operation == "stats")

    if operation in ("createCredential", "createCredentialAdmin") and isinstance(case.body, dict):
        expires = _parse(case.body.get("expires_at"))
        if expires is not None and expires <= int(time.time() * 1000) + 60_000:
            case.body["expires_at"] = _format(int(time.time() * 1000) + 365 * DAY_MS)


# An import body is a file: its text goes as it is, as for text/plain.
schemathesis.serializer.alias(["application/x-ndjson", "text/csv"], "text/plain")


# Schemathesis 4.32.5 reads every http(s) string of a JSON answer as a URL it may link
# to, and stops the whole run on one that `urlsplit` refuses ("Invalid IPv6 URL"): a
# tenant's allowed origin `http://[::1` is such a string, and valid here. Such a string is
# no link.
def _tolerant(same_origin_path):
    def wrapper(value, origin):
        try:
            return same_origin_path(value, origin)
        except ValueError:
            return None

    return wrapper


_observations._same_origin_path = _tolerant(_observations._same_origin_path)
