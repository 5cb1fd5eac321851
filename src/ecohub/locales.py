"""The languages ecohub speaks and its compiled gettext catalogues (Babel), for every layer that words things.

The console (`ecohub.api.i18n`) and the contexts that store messages for people (notifications, rendered per
reader) share one catalogue: `ecohub/api/locale/<locale>/LC_MESSAGES/messages.mo`, built by `scripts/i18n.py`.
This module imports nothing of ecohub, so any layer may use it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent / "api" / "locale"
DOMAIN = "messages"
DEFAULT = "en"
# catalogue id → (the name of the language in itself, the BCP 47 tag for <html lang>, the Babel locale for formats)
LANGUAGES: dict[str, tuple[str, str, str]] = {
    "en": ("English", "en", "en"),
    "de": ("Deutsch", "de", "de_DE"),
    "zh_Hans": ("简体中文", "zh-Hans", "zh_Hans_CN"),
    "es": ("Español", "es", "es_ES"),
}


def normalize(tag: str | None) -> str | None:
    """A language tag (`de-AT`, `zh-CN`, `zh_Hans`, `es`) as one of the catalogues, or None."""
    if not tag:
        return None
    t = tag.strip().replace("_", "-").lower()
    if not t or t == "*":
        return None
    if t.startswith("zh"):
        # Simplified Chinese is what we have: zh, zh-CN, zh-SG, zh-Hans; Traditional (zh-TW, zh-HK, zh-Hant) is not
        return None if any(x in t for x in ("hant", "-tw", "-hk", "-mo")) else "zh_Hans"
    base = t.split("-")[0]
    return base if base in LANGUAGES else None


@cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalogue of a locale (English: the message ids themselves)."""
    if locale == DEFAULT or locale not in LANGUAGES:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [locale], domain=DOMAIN)


def translator(locale: str | None) -> NullTranslations:
    """The catalogue for any language tag (unknown or None: English)."""
    return translations(normalize(locale) or DEFAULT)
