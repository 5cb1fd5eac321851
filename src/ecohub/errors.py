"""The error root of ecohub: every error says who can act on it and carries a stable machine code."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Every machine code an ecohub error can carry (stable: clients and docs rely on them; add, never rename)."""

    ALREADY_ERASED = "already_erased"
    ALREADY_EXITED = "already_exited"
    ALREADY_EXTENDED = "already_extended"
    ALREADY_LISTED = "already_listed"
    AMBIGUOUS_PROPERTY = "ambiguous_property"
    API_FAILED = "api_failed"
    AUTOMATIONS_UNAVAILABLE = "automations_unavailable"
    BAD_JSON = "bad_json"
    BIND_CODE_EXPIRED = "bind_code_expired"
    BIND_CODE_USED = "bind_code_used"
    BREAKING_SPEC_CHANGE = "breaking_spec_change"
    BROKER_UNAVAILABLE = "broker_unavailable"
    CELL_KEY_DESTROYED = "cell_key_destroyed"
    CELL_NOT_SERVED = "cell_not_served"
    CERTIFICATION_REQUIRED = "certification_required"
    COMMAND_TIMEOUT = "command_timeout"
    COMMANDS_UNAVAILABLE = "commands_unavailable"
    COMPONENT_EXISTS = "component_exists"
    CONFLICT = "conflict"
    CROSS_SITE = "cross_site"
    DATABASE_UNAVAILABLE = "database_unavailable"
    DEVICE_ALREADY_BOUND = "device_already_bound"
    DEVICE_INACTIVE = "device_inactive"
    DEVICE_NOT_IN_HOME = "device_not_in_home"
    DUPLICATE_REPORT = "duplicate_report"
    EMAIL_TAKEN = "email_taken"
    ERROR = "error"
    EXIT_BEFORE_FOUNDING = "exit_before_founding"
    EXIT_OUT_OF_ORDER = "exit_out_of_order"
    FILE_NOT_FOUND = "file_not_found"
    FORBIDDEN = "forbidden"
    GUARD_FAILED = "guard_failed"
    HOME_NOT_EMPTY = "home_not_empty"
    HOME_ROLE = "home_role"
    HTTP_ERROR = "http_error"
    HUB_NOT_RUNNING = "hub_not_running"
    HUB_UNREACHABLE = "hub_unreachable"
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    ILLEGAL_TRANSITION = "illegal_transition"
    INGEST_FAILED = "ingest_failed"
    INVALID_AGG = "invalid_agg"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_ARGUMENT = "invalid_argument"
    INVALID_AVAILABILITY = "invalid_availability"
    INVALID_BATCH_MAX = "invalid_batch_max"
    INVALID_BIND_CODE = "invalid_bind_code"
    INVALID_BRAND_KEY = "invalid_brand_key"
    INVALID_BROKER = "invalid_broker"
    INVALID_BUCKET = "invalid_bucket"
    INVALID_COMMAND = "invalid_command"
    INVALID_COUNT = "invalid_count"
    INVALID_CREDENTIALS = "invalid_credentials"
    INVALID_DATABASE = "invalid_database"
    INVALID_DATE = "invalid_date"
    INVALID_DECLARATION = "invalid_declaration"
    INVALID_DEVICE_CMD = "invalid_device_cmd"
    INVALID_DEVICE_CREDENTIALS = "invalid_device_credentials"
    INVALID_DID = "invalid_did"
    INVALID_EMAIL = "invalid_email"
    INVALID_EXPIRY = "invalid_expiry"
    INVALID_FILE = "invalid_file"
    INVALID_GROUP = "invalid_group"
    INVALID_ID = "invalid_id"
    INVALID_INPUT = "invalid_input"
    INVALID_KEY = "invalid_key"
    INVALID_KIND = "invalid_kind"
    INVALID_LIMIT = "invalid_limit"
    INVALID_MODEL = "invalid_model"
    INVALID_NAME = "invalid_name"
    INVALID_PART_NO = "invalid_part_no"
    INVALID_POINTS = "invalid_points"
    INVALID_PUBLIC_KEY = "invalid_public_key"
    INVALID_QUANTITY = "invalid_quantity"
    INVALID_RANGE = "invalid_range"
    INVALID_RETENTION = "invalid_retention"
    INVALID_ROLE = "invalid_role"
    INVALID_RULE = "invalid_rule"
    INVALID_SERIES = "invalid_series"
    INVALID_SPEC = "invalid_spec"
    INVALID_STAGE = "invalid_stage"
    INVALID_SUPPLIER = "invalid_supplier"
    INVALID_TEXT_VERSION = "invalid_text_version"
    INVALID_TOKEN = "invalid_token"
    INVALID_VALUE = "invalid_value"
    INVALID_VOLUME = "invalid_volume"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    MINORITY_RULE = "minority_rule"
    MISSING_ARGUMENT = "missing_argument"
    MISSING_CREDENTIALS = "missing_credentials"
    MISSING_TOKEN = "missing_token"
    NO_CREDENTIALS = "no_credentials"
    NO_SUBJECT_KEY = "no_subject_key"
    NOT_FOUND = "not_found"
    NOT_LISTABLE = "not_listable"
    NOT_PROVISIONABLE = "not_provisionable"
    NOT_YOUR_DEVICE = "not_your_device"
    NOT_YOUR_PARTNER = "not_your_partner"
    OUT_OF_RANGE = "out_of_range"
    PARTNER_EXISTS = "partner_exists"
    PARTNER_EXITED = "partner_exited"
    PARTNER_REQUIRED = "partner_required"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    PORT_IN_USE = "port_in_use"
    PROPERTY_NOT_READABLE = "property_not_readable"
    PROPERTY_NOT_WRITABLE = "property_not_writable"
    RATE_LIMITED = "rate_limited"
    REASON_REQUIRED = "reason_required"
    REFUSALS_UNAVAILABLE = "refusals_unavailable"
    REQUEST_CLOSED = "request_closed"
    ROUND_BEFORE_FOUNDING = "round_before_founding"
    ROUND_OUT_OF_ORDER = "round_out_of_order"
    RULE_LOOP = "rule_loop"
    SHARE_WITH_SELF = "share_with_self"
    SKU_TAKEN = "sku_taken"
    STORE_UNHANDLED = "store_unhandled"
    SUBJECT_ERASED = "subject_erased"
    SUPPLIER_EXISTS = "supplier_exists"
    TIMEOUT = "timeout"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_REVOKED = "token_revoked"
    TOO_MANY_RULES = "too_many_rules"
    UNAUTHORIZED = "unauthorized"
    UNAVAILABLE = "unavailable"
    UNKNOWN_ACTION = "unknown_action"
    UNKNOWN_EVENT = "unknown_event"
    UNKNOWN_CATEGORY = "unknown_category"
    UNKNOWN_CELL = "unknown_cell"
    UNKNOWN_COMPONENT = "unknown_component"
    UNKNOWN_COUNTRY = "unknown_country"
    UNKNOWN_CURRENCY = "unknown_currency"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_FAULT = "unknown_fault"
    UNKNOWN_HOME = "unknown_home"
    UNKNOWN_LISTING = "unknown_listing"
    UNKNOWN_MARKET = "unknown_market"
    UNKNOWN_MEMBER = "unknown_member"
    UNKNOWN_MODEL = "unknown_model"
    UNKNOWN_NOTICE = "unknown_notice"
    UNKNOWN_PARTNER = "unknown_partner"
    UNKNOWN_PROPERTY = "unknown_property"
    UNKNOWN_PURPOSE = "unknown_purpose"
    UNKNOWN_REPORT = "unknown_report"
    UNKNOWN_REQUEST = "unknown_request"
    UNKNOWN_ROOM = "unknown_room"
    UNKNOWN_RULE = "unknown_rule"
    UNKNOWN_SUBJECT = "unknown_subject"
    UNKNOWN_SUPPLIER = "unknown_supplier"
    UNKNOWN_TOKEN = "unknown_token"
    UNKNOWN_USER = "unknown_user"
    UNSAFE_URL = "unsafe_url"
    UNTRUSTED_REPORT = "untrusted_report"
    WEAK_PASSWORD = "weak_password"
    WRONG_CELL = "wrong_cell"
    WRONG_CURRENCY = "wrong_currency"
    WRONG_PARTNER = "wrong_partner"
    WRONG_ROLE = "wrong_role"
    WRONG_TYPE = "wrong_type"
    # fleet security audit
    UNKNOWN_FINDING = "unknown_finding"
    FINDING_CLOSED = "finding_closed"
    # certification evidence
    INVALID_EVIDENCE = "invalid_evidence"
    UNKNOWN_EVIDENCE = "unknown_evidence"
    UNKNOWN_REGIME = "unknown_regime"
    EVIDENCE_TOO_LARGE = "evidence_too_large"
    EVIDENCE_REVOKED = "evidence_revoked"
    # product definition, ID design, pricing, passwords
    DEFINITION_INCOMPLETE = "definition_incomplete"
    DESIGN_NOT_APPROVED = "design_not_approved"
    INVALID_DESIGN = "invalid_design"
    UNKNOWN_DESIGN = "unknown_design"
    DESIGN_DECIDED = "design_decided"
    PRICE_OUTSIDE_POLICY = "price_outside_policy"
    INVALID_POLICY = "invalid_policy"
    NO_BOM = "no_bom"
    UNKNOWN_FX_RATE = "unknown_fx_rate"
    INVALID_RESET_TOKEN = "invalid_reset_token"
    WRONG_PASSWORD = "wrong_password"
    MAIL_FAILED = "mail_failed"
    READ_ONLY_FIELD = "read_only_field"
    # added by the CLI/REST conventions work (issue 18)
    DATA_DIR_MISSING = "data_dir_missing"
    DATA_DIR_NOT_A_DIRECTORY = "data_dir_not_a_directory"
    INVALID_CURSOR = "invalid_cursor"
    # console scenes
    INVALID_SCENE = "invalid_scene"
    UNKNOWN_SCENE = "unknown_scene"
    TOO_MANY_SCENES = "too_many_scenes"
    # ota: firmware images and campaigns
    BAD_SIGNATURE = "bad_signature"
    CAMPAIGN_ACTIVE = "campaign_active"
    IMAGE_NOT_APPROVED = "image_not_approved"
    IMAGE_STORE_UNAVAILABLE = "image_store_unavailable"
    INVALID_STAGES = "invalid_stages"
    INVALID_THRESHOLD = "invalid_threshold"
    INVALID_ROLLOUT_RATE = "invalid_rollout_rate"
    INVALID_VERSION = "invalid_version"
    NO_TARGET_DEVICES = "no_target_devices"
    UNKNOWN_CAMPAIGN = "unknown_campaign"
    UNKNOWN_IMAGE = "unknown_image"
    UNKNOWN_SIGNING_KEY = "unknown_signing_key"
    VERSION_EXISTS = "version_exists"
    VERSION_NOT_NEWER = "version_not_newer"
    # the developer platform (apps, OAuth grants, quotas, push)
    APP_NOT_ALLOWED = "app_not_allowed"
    APP_SUSPENDED = "app_suspended"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    INVALID_REDIRECT_URI = "invalid_redirect_uri"
    INVALID_SCOPE = "invalid_scope"
    INVALID_EVENT_TYPE = "invalid_event_type"
    UNKNOWN_APP = "unknown_app"
    UNKNOWN_GRANT = "unknown_grant"
    UNKNOWN_WEBHOOK = "unknown_webhook"
    NOT_YOUR_APP = "not_your_app"
    DEVICE_NOT_GRANTABLE = "device_not_grantable"
    UNKNOWN_SHARE = "unknown_share"
    SHARE_ROLE = "share_role"
    UNKNOWN_NOTIFICATION = "unknown_notification"

    @classmethod
    def parse(cls, text: str) -> ErrorCode:
        """The code named by `text` (from another hub, say); an unknown one is `http_error`."""
        return cls._value2member_map_.get(text, cls.HTTP_ERROR)  # type: ignore[return-value]


class EcohubError(Exception):
    """Root of all ecohub errors; `code` is stable and machine-readable."""

    code: str = ErrorCode.ERROR
    status: int = 500
    exit_code: int = 1

    def __init__(self, message: str, *, code: ErrorCode | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The error as the REST API and `--json` CLI output render it."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.details)
        return {"error": body}


class InvalidInput(EcohubError):
    """The caller sent something wrong; fixing the request fixes it."""

    code = ErrorCode.INVALID_INPUT
    status = 422
    exit_code = 7  # not 2: Click exits 2 on usage errors (unknown option, missing argument)


class NotFound(EcohubError):
    """The thing named does not exist (or the caller may not know it exists)."""

    code = ErrorCode.NOT_FOUND
    status = 404
    exit_code = 3


class Unauthorized(EcohubError):
    """No valid credentials were presented."""

    code = ErrorCode.UNAUTHORIZED
    status = 401
    exit_code = 4


class Forbidden(EcohubError):
    """Credentials are valid but do not allow this."""

    code = ErrorCode.FORBIDDEN
    status = 403
    exit_code = 4


class Conflict(EcohubError):
    """The request clashes with the current state (duplicate, illegal transition)."""

    code = ErrorCode.CONFLICT
    status = 409
    exit_code = 5


class PayloadTooLarge(InvalidInput):
    """The request body or message exceeds the allowed size."""

    code = ErrorCode.PAYLOAD_TOO_LARGE
    status = 413


class TooManyRequests(EcohubError):
    """Over a rate limit; `retry_after` (seconds) says when to try again."""

    code = ErrorCode.RATE_LIMITED
    status = 429
    exit_code = 6

    @property
    def retry_after(self) -> int:
        """Seconds until the next attempt may succeed."""
        return int(self.details.get("retry_after", 1))


class Unavailable(EcohubError):
    """A dependency is down or slow; retrying later may succeed."""

    code = ErrorCode.UNAVAILABLE
    status = 503
    exit_code = 6


class Timeout(Unavailable):
    """A device or dependency did not answer in time."""

    code = ErrorCode.TIMEOUT
    status = 504
