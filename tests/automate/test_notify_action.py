"""The `notify` action's document: templates over known, plain fields only; severities; a stored round trip."""

from __future__ import annotations

import pytest

from ecohub.automate.domain import NotifyAction
from ecohub.automate.parse import Stored, action_doc, parse_action
from ecohub.errors import InvalidInput


def test_notify_action_templates_take_known_plain_fields_only() -> None:
    a = parse_action({"type": "notify", "message": "{device} turned {value}", "severity": "critical"}, "a", Stored())
    assert a == NotifyAction("{device} turned {value}", None, "critical")
    assert parse_action(action_doc(a), "a", Stored()) == a
    # attribute/index access, widths, conversions, unknown fields and broken braces are refused, naming the path
    for message in ("{device.__class__}", "{device[0]}", "{value:>99999999}", "{device!r}", "{unknown}", "{", "x }"):
        with pytest.raises(InvalidInput) as err:
            parse_action({"type": "notify", "message": message}, "actions[0]", Stored())
        assert "actions[0].message" in err.value.message, message
    with pytest.raises(InvalidInput) as err:
        parse_action({"type": "notify", "message": "hi", "severity": "loud"}, "actions[0]", Stored())
    assert "actions[0].severity" in err.value.message
