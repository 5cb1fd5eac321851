"""The console's message catalogues: extract messages.pot, update each locale's .po from it, compile the .mo files.

    python scripts/i18n.py extract    # src → src/ecohub/api/locale/messages.pot
    python scripts/i18n.py update     # messages.pot → <locale>/LC_MESSAGES/messages.po (new ids empty, old ones kept)
    python scripts/i18n.py compile    # .po → .mo (committed: `pip install -e .` needs no build step)
    python scripts/i18n.py check      # exit 1 if the .pot is stale, a catalogue is incomplete or a .mo is stale,
                                      # or a template shows text outside _() / gettext

Translators edit the .po files; tests/api/test_i18n.py runs the same checks."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "ecohub"
LOCALE_DIR = SRC / "api" / "locale"
POT = LOCALE_DIR / "messages.pot"
LOCALES = ("de", "zh_Hans", "es")
METHODS = [("api/templates/**.html", "jinja2.ext:babel_extract"), ("api/**.py", "python"),
           ("spec/labels.py", "python"), ("notify/messages.py", "python")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
OPTIONS = {"api/templates/**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}}


def extract() -> Catalog:
    """Every message id in the console's templates and Python code (sorted, without source locations)."""
    catalog = Catalog(project="ecohub", domain="messages", fuzzy=False)
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(SRC), METHODS, options_map=OPTIONS, keywords=KEYWORDS, strip_comment_tags=True):
        flags = ("python-format",) if isinstance(message, str) and "%(" in message else ()
        catalog.add(message, None, flags=flags)
    return catalog


def _pot_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, omit_header=True, sort_output=True, no_location=True, width=0)
    return out.getvalue()


def load(path: Path, locale: str | None = None) -> Catalog:
    """A .po or .pot file."""
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def write_extracted() -> None:
    """Write messages.pot from the sources."""
    LOCALE_DIR.mkdir(parents=True, exist_ok=True)
    POT.write_bytes(_pot_bytes(extract()))


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def update() -> None:
    """Merge messages.pot into each locale's catalogue (translations of vanished ids are dropped)."""
    template = load(POT)
    for locale in LOCALES:
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = load(path, locale) if path.exists() else Catalog(locale=locale, domain="messages")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as f:
            write_po(f, catalog, sort_output=True, no_location=True, width=0)


def compile_all() -> None:
    """Compile each .po into its .mo."""
    for locale in LOCALES:
        catalog = load(po_path(locale), locale)
        with po_path(locale).with_suffix(".mo").open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)


def _key(value: object) -> object:
    """Plural ids and strings come back as lists from a .mo and tuples from a .po: compare them as tuples."""
    return tuple(value) if isinstance(value, list | tuple) else value


TEMPLATES = SRC / "api" / "templates"
# what a template may show as it is: the brand, a hash's name, commands and code (inside <code>), the literal values
# a rule's value field takes
VERBATIM = frozenset({"ecohub", "eco", "hub", "SHA-256", "sha256", "true", "false"})
_NOT_TEXT = re.compile(r"\{#.*?#\}|<(script|style|code|pre|kbd|samp)\b.*?</\1>", re.S)
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_LABEL = re.compile(r'\b(?:title|placeholder|aria-label|alt|label)="([^"{]*)"')
_ATTRIBUTE = re.compile(r'\s[a-z-]+="[^"]*"|\s[a-z-]+=\S+')


def unwrapped() -> list[str]:
    """Text a template shows without passing it through gettext: words outside `{{ _() }}` in text or in labelling
    attributes (title, placeholder, aria-label, alt), other than code and the verbatim words above."""
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        source = _NOT_TEXT.sub(" ", path.read_text())
        texts = _LABEL.findall(source)
        bare = _JINJA.sub(" ", source)
        texts += re.sub(r"<[^>]*>", "\n", _ATTRIBUTE.sub(" ", bare)).splitlines()
        for text in texts:
            words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]", text)
                     if w not in VERBATIM and sum(c.isalpha() for c in w) > 1]
            if words:
                found.append(f"{path.relative_to(TEMPLATES)}: text outside gettext: {text.strip()!r}")
    return found


def problems() -> list[str]:
    """What is out of date or missing (empty: all good)."""
    found = unwrapped()
    if not POT.exists() or POT.read_bytes() != _pot_bytes(extract()):
        found.append("messages.pot is stale: run `python scripts/i18n.py extract update`")
    ids = {m.id for m in load(POT) if m.id} if POT.exists() else set()
    for locale in LOCALES:
        path = po_path(locale)
        if not path.exists():
            found.append(f"{locale}: no catalogue")
            continue
        catalog = load(path, locale)
        for m in catalog:
            if not m.id:
                continue
            strings = m.string if isinstance(m.string, tuple | list) else (m.string,)
            if m.id in ids and (m.fuzzy or not all(strings)):
                found.append(f"{locale}: untranslated {m.id!r}")
        missing = ids - {m.id for m in catalog if m.id}
        found += [f"{locale}: missing {mid!r}" for mid in sorted(missing, key=str)]
        for message, errors in catalog.check():
            found += [f"{locale}: {message.id!r}: {e}" for e in errors]
        mo = path.with_suffix(".mo")
        if not mo.exists():
            found.append(f"{locale}: not compiled")
            continue
        with mo.open("rb") as f:
            compiled = {_key(m.id): _key(m.string) for m in read_mo(f) if m.id}
        if compiled != {_key(m.id): _key(m.string) for m in catalog if m.id and not m.fuzzy}:
            found.append(f"{locale}: messages.mo is stale: run `python scripts/i18n.py compile`")
    return found


def main(argv: list[str]) -> int:
    """Run the named steps in order."""
    for step in argv or ["check"]:
        if step == "extract":
            write_extracted()
        elif step == "update":
            update()
        elif step == "compile":
            compile_all()
        elif step == "check":
            found = problems()
            for p in found:
                print(p)
            if found:
                return 1
        else:
            print(__doc__)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
