"""The OAuth 2.1 authorization server on Authlib's grants: authorization code with PKCE (S256 only), refresh tokens
with rotation, revocation (RFC 7009) and introspection (RFC 7662). Framework-free: the API hands it an HttpRequest
and turns the (status, body, headers) it returns into a response."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from ecohub.apps.domain import ACCESS_PREFIX, ACCESS_TTL_S, ALL_SCOPES, CODE_TTL_S, REFRESH_PREFIX, REFRESH_TTL_S
from ecohub.apps.domain import new_token as _new_token
from ecohub.apps.grants import CodeRecord, GrantService, GrantUser, TokenRecord
from ecohub.apps.registry import AppRegistry, Client

AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


@dataclass
class HttpRequest:
    """What the server needs of an HTTP request (the API's adapter fills it in)."""

    method: str
    uri: str
    headers: Mapping[str, str]  # looked up case-insensitively (Authlib asks for `Authorization`)
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)


class _Payload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for k, v in items:
            self._datalist[k].append(v)
        self._data = {k: v[0] for k, v in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _Request(OAuth2Request):
    def __init__(self, req: HttpRequest) -> None:
        super().__init__(method=req.method, uri=req.uri, headers=req.headers)
        self._args = dict(req.query)
        self._form = dict(req.form)
        self.payload = _Payload(req.query + req.form if req.method == "POST" else req.query)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class OAuthClient:
    """An app in the shape of Authlib's ClientMixin (confidential clients: a secret, exact redirect URIs)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.client.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return " ".join(self.client.scopes)
        return " ".join(s for s in scope_to_list(scope) if s in self.client.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris  # exact string match (OAuth 2.1)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client.secret_matches(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


class S256Only(CodeChallenge):
    """PKCE required of every client (OAuth 2.1), with the S256 method only (no `plain`)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE is required", redirect_uri=redirect_uri)
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256", redirect_uri=redirect_uri)
        super().validate_code_challenge(grant, redirect_uri)


class OAuthServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's authorization server over the app registry and the grant store."""

    def __init__(self, registry: AppRegistry, grants_store: GrantService) -> None:
        super().__init__(scopes_supported=list(ALL_SCOPES))
        self.registry = registry
        self.store = grants_store
        self.register_token_generator("default", self._generate)
        self.register_grant(_CodeGrant, [S256Only(required=True)])
        self.register_grant(_RefreshGrant)
        self.register_endpoint(_Revocation)
        self.register_endpoint(_Introspection)

    def query_client(self, client_id: str) -> OAuthClient | None:
        found = self.registry.client(client_id) if client_id else None
        return OAuthClient(found) if found is not None and found.active else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        family = request.authorization_code.id if request.authorization_code else request.refresh_token.family
        self.store.save_token(request.user, token, app_id=request.client.get_client_id(), family=family)

    def _generate(self, *, grant_type: str, client: OAuthClient, user: GrantUser | None = None,
                  scope: str | None = None, expires_in: int | None = None,
                  include_refresh_token: bool = True) -> dict[str, Any]:
        assert user is not None
        token: dict[str, Any] = {"token_type": "Bearer", "access_token": _new_token(ACCESS_PREFIX, user.cell),
                                 "expires_in": expires_in or ACCESS_TTL_S, "scope": scope or ""}
        if include_refresh_token:
            token["refresh_token"] = _new_token(REFRESH_PREFIX, user.cell)
            token["refresh_expires_in"] = REFRESH_TTL_S
        return token

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else _Request(request)

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        if isinstance(body, dict):
            body = json.dumps(body)
        return status, body, list(headers)

    # -- what the API calls ----------------------------------------------------------------------------------------
    def consent(self, req: HttpRequest) -> Any:
        """Validate an authorization request before the consent screen (raises Authlib's OAuth2Error)."""
        return self.get_consent_grant(req)

    def authorize(self, req: HttpRequest, user: GrantUser | None) -> tuple[int, Any, list[tuple[str, str]]]:
        """Answer the authorization request: a code for `user`, or access_denied when None (a redirect)."""
        request = self.create_oauth2_request(req)
        grant = self.get_consent_grant(request)
        return self.create_authorization_response(request, grant_user=user, grant=grant)  # type: ignore[no-any-return]

    def token(self, req: HttpRequest) -> tuple[int, Any, list[tuple[str, str]]]:
        """The token endpoint (authorization_code, refresh_token)."""
        return self.create_token_response(req)  # type: ignore[no-any-return]

    def revoke(self, req: HttpRequest) -> tuple[int, Any, list[tuple[str, str]]]:
        """RFC 7009 revocation."""
        return self.create_endpoint_response("revocation", req)  # type: ignore[no-any-return]

    def introspect(self, req: HttpRequest) -> tuple[int, Any, list[tuple[str, str]]]:
        """RFC 7662 introspection (an app introspects its own tokens)."""
        return self.create_endpoint_response("introspection", req)  # type: ignore[no-any-return]


class _CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        asked = self.request.payload.scope
        client: OAuthClient = self.request.client
        if asked and not set(scope_to_list(asked)) <= set(client.client.scopes):
            raise InvalidScopeError("the app asks for a scope it did not register", redirect_uri=redirect_uri,
                                    state=self.request.payload.state)
        return redirect_uri

    def generate_authorization_code(self) -> str:
        user: GrantUser = self.request.user
        return f"{user.cell}.{generate_token(self.AUTHORIZATION_CODE_LENGTH)}"  # the code names its cell

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        self.server.store.save_code(request.user, code, app_id=request.client.get_client_id(),
                                    redirect_uri=data.get("redirect_uri") or request.client.get_default_redirect_uri(),
                                    scope=request.scope or "", challenge=data["code_challenge"],
                                    method=data["code_challenge_method"], ttl_s=CODE_TTL_S)

    def query_authorization_code(self, code: str, client: OAuthClient) -> CodeRecord | None:
        return self.server.store.take_code(code, client.get_client_id())  # type: ignore[no-any-return]

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        pass  # marked used when taken: a second use is detected (and revokes what the first one got)

    def authenticate_user(self, authorization_code: CodeRecord) -> GrantUser:
        return GrantUser(authorization_code.cell, authorization_code.user_id, authorization_code.grant_id)


class _RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every refresh returns a new refresh token

    def authenticate_refresh_token(self, refresh_token: str) -> TokenRecord | None:
        return self.server.store.refresh_record(refresh_token)  # type: ignore[no-any-return]

    def authenticate_user(self, refresh_token: TokenRecord) -> GrantUser:
        return refresh_token.get_user()

    def revoke_old_credential(self, refresh_token: TokenRecord) -> None:
        self.server.store.rotate(refresh_token)


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        return self.server.store.query_token(token_string, token_type_hint)  # type: ignore[no-any-return]

    def revoke_token(self, token: TokenRecord, request: Any) -> None:
        self.server.store.revoke_token(token)


class _Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        return self.server.store.query_token(token_string, token_type_hint)  # type: ignore[no-any-return]

    def check_permission(self, token: TokenRecord, client: OAuthClient, request: Any) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: TokenRecord) -> dict[str, Any]:
        return {"active": True, "client_id": token.app_id, "scope": token.scope, "sub": token.user_id,
                "token_type": "Bearer", "exp": int(token.access_expires_at.timestamp()),
                "iat": int(token.issued_at.timestamp()), "grant_id": token.grant_id}
