"""The notifications ecohub words itself, by code: English templates marked for the catalogue, rendered per reader.

A stored notification keeps its code and parameters next to the English text it had when stored (the text is what
rows from before codes have, and what clients that read only `title`/`body` keep getting in English when no
language is asked for); each reader gets it rendered in their language: the console's, the API caller's
Accept-Language or account language, the language of the account an app push goes to."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ecohub.locales import translator


def N_(message: str) -> str:  # gettext's "mark only" convention: scripts/i18n.py extracts these
    """Mark a template for the catalogue (translated when rendered)."""
    return message


# code → (title, body); %(name)s parameters
MESSAGES: dict[str, tuple[str, str]] = {
    "share.received": (N_("A home was shared with you"), N_("Your role in %(home)s: %(role)s.")),
    "share.granted": (N_("Home shared"), N_("Another user now has the role %(role)s in %(home)s.")),
    "device.offline": (N_("Device offline"), N_("%(device)s went offline.")),
}
# parameters whose values are words of ours (translated too), not names people gave
WORDS: dict[str, dict[str, str]] = {
    "role": {"owner": N_("owner"), "member": N_("member"), "guest": N_("guest")},
}


def render(code: str | None, params: Mapping[str, Any] | None,
           gettext: Callable[[str], str] = lambda m: m) -> tuple[str, str] | None:
    """(title, body) of a coded message with `gettext`'s translations; None for free text or an unknown code."""
    if code is None or code not in MESSAGES:
        return None
    title, body = MESSAGES[code]
    values = {k: gettext(WORDS[k].get(str(v), str(v))) if k in WORDS else str(v) for k, v in (params or {}).items()}
    try:
        return gettext(title), gettext(body) % values
    except (KeyError, ValueError, TypeError):  # a translation that lost a placeholder: the English one still works
        return title, body % values


def localized(notification: dict[str, Any], locale: str | None) -> dict[str, Any]:
    """A notification's view with title and body in `locale` (free text and unknown codes stay as stored)."""
    words = render(notification.get("code"), notification.get("params"), translator(locale).ugettext)
    if words is None:
        return notification
    return {**notification, "title": words[0], "body": words[1]}
