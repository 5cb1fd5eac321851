"""Telling the operator about a new critical finding: a webhook to the configured URL, through the SSRF guard."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from ecohub.errors import InvalidInput
from ecohub.netguard import UrlPolicy

log = logging.getLogger(__name__)


class WebhookNotifier:
    """POSTs `{"event": "security.finding", "finding": {…}}` as JSON; the URL is checked right before each request
    (a name may resolve elsewhere by then); no redirects are followed."""

    def __init__(self, url: str | None, policy: UrlPolicy, *, timeout_s: float = 5.0) -> None:
        self.url = url
        self.policy = policy
        self.timeout_s = timeout_s

    def send(self, finding: dict[str, Any]) -> bool:
        """Deliver one finding; → whether the receiver took it (2xx). Failures are logged, never raised."""
        if not self.url:
            return False
        try:
            self.policy.check(self.url)
            r = httpx.post(self.url, json={"event": "security.finding", "finding": finding}, timeout=self.timeout_s,
                           follow_redirects=False, headers={"User-Agent": "ecohub-security-audit"})
        except InvalidInput as err:
            log.error("security webhook %s refused by the URL policy: %s", self.url, err)
            return False
        except httpx.HTTPError as err:
            log.warning("security webhook %s failed: %s", self.url, err)
            return False
        if not r.is_success:
            log.warning("security webhook %s answered %s", self.url, r.status_code)
        return r.is_success
