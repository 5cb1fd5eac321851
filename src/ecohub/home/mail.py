"""Outgoing mail through the configured SMTP relay (stdlib smtplib), sent off the request thread; printed to the log
in development when no relay is configured."""

from __future__ import annotations

import logging
import smtplib
from concurrent.futures import Future, ThreadPoolExecutor
from email.message import EmailMessage

from ecohub.settings import MailSettings

log = logging.getLogger(__name__)


class Mailer:
    """Sends plain-text messages; one worker thread, so a slow relay never delays (or times) an API answer."""

    def __init__(self, settings: MailSettings, *, development: bool) -> None:
        self.settings = settings
        self.development = development
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecohub-mail")

    def send(self, to: str, subject: str, body: str) -> Future[None]:
        """Queue one message; the future is done once the relay accepted it (or it was logged)."""
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.settings.sender, to, subject
        msg.set_content(body)
        return self._pool.submit(self._deliver, msg)

    def _deliver(self, msg: EmailMessage) -> None:
        cfg = self.settings
        if not cfg.smtp_host:
            if self.development:
                log.warning("mail (no SMTP relay configured, development): to %s, subject %r\n%s", msg["To"],
                            msg["Subject"], msg.get_content())
            else:
                log.error("mail to a user was not sent: set ECOHUB_MAIL__SMTP_HOST (subject %r)", msg["Subject"])
            return
        try:
            with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_s) as smtp:
                if cfg.starttls:
                    smtp.starttls()
                if cfg.smtp_username:
                    smtp.login(cfg.smtp_username, cfg.smtp_password or "")
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as err:  # recorded, never raised into a request
            log.error("mail relay %s:%s refused or failed: %s", cfg.smtp_host, cfg.smtp_port, err)

    def close(self) -> None:
        """Finish queued messages and stop the worker."""
        self._pool.shutdown(wait=True)
