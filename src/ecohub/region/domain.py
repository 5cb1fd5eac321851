"""Where a device's data lives: its id carries the cell that serves it (routing data, not personal data)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from ecohub.errors import ErrorCode, InvalidInput

DID_RANDOM_BYTES = 8


def new_did(cell: str) -> str:
    """A fresh opaque device id `{cell}-{16 hex}`: short enough for MQTT 3.1.1 client ids (≤ 23)."""
    return f"{cell}-{secrets.token_hex(DID_RANDOM_BYTES)}"


def cell_of_did(did: str) -> str:
    """The cell named by a device id; raises InvalidInput for a malformed id."""
    cell, sep, rest = did.partition("-")
    if not sep or not cell.isalnum() or len(rest) != DID_RANDOM_BYTES * 2 or not _is_hex(rest):
        raise InvalidInput(f"{did!r} is not a device id (expected '<cell>-<16 hex digits>')",
                           code=ErrorCode.INVALID_DID)
    return cell


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


# ISO 3166-1 alpha-2, officially assigned codes (plus XK, widely used for Kosovo).
ISO_COUNTRIES = _codes("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO
JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR
MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO
RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV
TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK
""")
# EU, EEA, UK and Switzerland (GDPR and its equivalents), with the EU's outermost regions that have their own codes,
# and the other European markets of the markets table (RS, TR, UA: the table pins them to eu, so sign-up must too).
EU_CELL = _codes("""
AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO GB CH
AX GF GP MQ RE YT MF GI GG JE IM FO GL SJ MC SM VA AD RS TR UA
""")
# The Americas.
US_CELL = _codes("""
US CA MX BR AR CL CO PE VE EC BO PY UY GY SR CR PA NI HN SV GT BZ CU DO HT JM TT BB BS AG DM GD KN LC VC
PR VI UM AS GU MP AI BM KY TC VG MS AW CW SX BQ PM FK GS
""")
COUNTRY_CELL: dict[str, str] = {**dict.fromkeys(EU_CELL, "eu"), **dict.fromkeys(US_CELL, "us"), "CN": "cn", "IN": "in"}
FALLBACK_CELL = "sg"


def cell_for_country(country: str, cells: Sequence[str]) -> str:
    """The cell a user of `country` (ISO 3166-1 alpha-2) is pinned to; for a market, the cell the markets table names
    (tests/home/test_accounts.py keeps the two equal)."""
    code = country.strip().upper()
    if len(code) != 2 or code not in ISO_COUNTRIES:
        raise InvalidInput(f"{country!r} is not an ISO 3166-1 alpha-2 country code (e.g. DE, US)",
                           code=ErrorCode.UNKNOWN_COUNTRY)
    cell = COUNTRY_CELL.get(code, FALLBACK_CELL)
    if cell not in cells:
        raise InvalidInput(f"country {code} is served by region cell {cell!r}, which this hub does not run "
                           f"(it serves {', '.join(cells)})", code=ErrorCode.CELL_NOT_SERVED, cell=cell)
    return cell
