"""OIDC third-party initiated login and full validation of the platform's id_token (PyJWT does the JWT and JWKS work)."""
from __future__ import annotations

import dataclasses
import secrets
import threading
from datetime import timedelta
from urllib.parse import urlencode

import jwt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from podium.core.lti.models import LtiDeployment, LtiNonce, LtiPlatform
from podium.core.models import utcnow

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
STATE_TTL = timedelta(minutes=10)
STATE_COOKIE = "lti1p3-state-"


class LaunchError(Exception):
    """A refused login or launch: HTTP status + a reason for the LMS admin."""

    def __init__(self, status: int, reason: str, who: str = ""):
        super().__init__(reason)
        self.status, self.reason, self.who = status, reason, who


@dataclasses.dataclass
class Launch:
    """A validated launch."""
    platform: LtiPlatform
    claims: dict
    deployment_id: str


class JwksClients:
    """One PyJWKClient per platform JWKS URL (caches the set, refetches on an unknown kid)."""

    def __init__(self, lifespan: float = 300, cooldown: float = 30, timeout: float = 5):
        self._clients: dict[str, jwt.PyJWKClient] = {}
        self._lock = threading.Lock()
        self.lifespan, self.cooldown, self.timeout = lifespan, cooldown, timeout

    def get(self, url: str) -> jwt.PyJWKClient:
        """The client for this URL."""
        with self._lock:
            if url not in self._clients:
                self._clients[url] = jwt.PyJWKClient(url, lifespan=self.lifespan,
                                                     cooldown_duration=self.cooldown,
                                                     timeout=self.timeout)
            return self._clients[url]


def _find_platform(db: Session, iss: str, client_id: str | None) -> LtiPlatform:
    query = select(LtiPlatform).filter_by(issuer=iss)
    if client_id:
        query = query.filter_by(client_id=client_id)
    found = list(db.scalars(query))
    if len(found) != 1:
        why = "is not registered" if not found else "has several client ids; client_id is required"
        raise LaunchError(401, f"issuer {iss!r} with client id {client_id!r} {why} in Podium")
    return found[0]


def _has_deployment(db: Session, platform: LtiPlatform, deployment_id: str) -> bool:
    return db.scalars(select(LtiDeployment).filter_by(
        platform_id=platform.id, deployment_id=deployment_id)).first() is not None


def begin_login(db: Session, params, redirect_uri: str) -> tuple[str, str]:
    """Handle /lti/login: store state+nonce, return (auth redirect URL, state)."""
    iss, login_hint = params.get("iss"), params.get("login_hint")
    if not iss or not login_hint or not params.get("target_link_uri"):
        raise LaunchError(400, "login needs iss, login_hint and target_link_uri")
    platform = _find_platform(db, iss, params.get("client_id"))
    dep = params.get("lti_deployment_id")
    if dep and not _has_deployment(db, platform, dep):
        raise LaunchError(401, f"deployment {dep!r} is not registered for {iss!r}")
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    db.add(LtiNonce(state=state, nonce=nonce, platform_id=platform.id,
                    expires_at=utcnow() + STATE_TTL))
    db.commit()
    query = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
             "prompt": "none", "client_id": platform.client_id, "redirect_uri": redirect_uri,
             "login_hint": login_hint, "state": state, "nonce": nonce}
    if params.get("lti_message_hint"):
        query["lti_message_hint"] = params["lti_message_hint"]
    sep = "&" if "?" in platform.login_url else "?"
    return platform.login_url + sep + urlencode(query), state


def _unverified(id_token: str) -> tuple[dict, dict]:
    try:
        return (jwt.get_unverified_header(id_token),
                jwt.decode(id_token, options={"verify_signature": False}))
    except jwt.PyJWTError as exc:
        raise LaunchError(400, f"id_token is not a JWT: {exc}") from exc


def _check_audience(claims: dict) -> tuple[str, str | None]:
    """Return (iss, client_id) from aud/azp per the LTI Security Framework."""
    iss, aud, azp = claims.get("iss"), claims.get("aud"), claims.get("azp")
    auds = aud if isinstance(aud, list) else [aud] if aud else []
    if not iss or not auds:
        raise LaunchError(401, "id_token lacks iss or aud")
    if len(auds) > 1 and not azp:
        raise LaunchError(401, "id_token has several audiences but no azp")
    client_id = azp or auds[0]
    if client_id not in auds:
        raise LaunchError(401, f"azp {azp!r} is not among the audiences")
    return iss, client_id


def _verify(platform: LtiPlatform, id_token: str, header: dict, jwks: JwksClients,
            leeway: float) -> dict:
    if header.get("alg") != "RS256" or not header.get("kid"):
        raise LaunchError(401, f"id_token must be RS256 with a kid (got {header.get('alg')!r})")
    try:
        key = jwks.get(platform.jwks_url).get_signing_key(header["kid"])
    except jwt.PyJWKClientConnectionError as exc:
        raise LaunchError(401, f"could not fetch the platform JWKS {platform.jwks_url}: {exc}") from exc
    except jwt.PyJWKClientError as exc:
        raise LaunchError(401, f"signing key unknown to the platform JWKS: {exc}") from exc
    try:
        return jwt.decode(id_token, key, algorithms=["RS256"], audience=platform.client_id,
                          issuer=platform.issuer, leeway=leeway,
                          options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]})
    except jwt.PyJWTError as exc:
        raise LaunchError(401, f"id_token rejected: {exc}") from exc


def _check_lti_claims(db: Session, platform: LtiPlatform, claims: dict) -> str:
    if claims.get(LTI + "version") != "1.3.0":
        raise LaunchError(400, "LTI version must be 1.3.0")
    if claims.get(LTI + "message_type") != "LtiResourceLinkRequest":
        raise LaunchError(400, f"unsupported message type {claims.get(LTI + 'message_type')!r}")
    dep = claims.get(LTI + "deployment_id")
    if not dep or not _has_deployment(db, platform, dep):
        raise LaunchError(401, f"deployment {dep!r} is not registered for {platform.issuer!r}")
    if not (claims.get(LTI + "resource_link") or {}).get("id"):
        raise LaunchError(400, "resource_link.id is missing")
    if not isinstance(claims.get(LTI + "roles"), list):
        raise LaunchError(400, "roles claim is missing")
    if not claims.get("sub"):
        raise LaunchError(400, "anonymous launches (no sub) are not supported")
    return dep


def _consume_nonce(db: Session, platform: LtiPlatform, state: str, nonce: str,
                   cookies, require_cookie: bool) -> None:
    row = db.scalars(select(LtiNonce).filter_by(state=state)).first()
    now = utcnow()
    if row is None or row.platform_id != platform.id:
        raise LaunchError(401, "unknown state: start the launch again from the LMS")
    if row.nonce != nonce:
        raise LaunchError(401, "nonce does not match this login")
    if row.used_at is not None:
        raise LaunchError(401, "nonce already used (replayed launch)")
    if row.expires_at < now:
        raise LaunchError(401, "login attempt expired: start the launch again")
    if require_cookie and cookies.get(STATE_COOKIE + state) != "1":
        raise LaunchError(401, "state cookie missing: the browser blocked Podium's cookie")
    done = db.execute(update(LtiNonce).where(LtiNonce.id == row.id, LtiNonce.used_at.is_(None))
                      .values(used_at=now))
    if done.rowcount != 1:
        raise LaunchError(401, "nonce already used (replayed launch)")


def validate_launch(db: Session, form, cookies, jwks: JwksClients, *, leeway: float = 30,
                    require_cookie: bool = True) -> Launch:
    """Validate /lti/launch fully; marks the nonce used (caller commits) or raises LaunchError."""
    id_token, state = form.get("id_token"), form.get("state")
    if not id_token or not state:
        raise LaunchError(400, "launch needs id_token and state")
    header, unverified = _unverified(id_token)
    who = f"iss={unverified.get('iss')!r} sub={unverified.get('sub')!r}"
    try:
        iss, client_id = _check_audience(unverified)
        platform = _find_platform(db, iss, client_id)
        claims = _verify(platform, id_token, header, jwks, leeway)
        dep = _check_lti_claims(db, platform, claims)
        _consume_nonce(db, platform, state, claims["nonce"], cookies, require_cookie)
    except LaunchError as exc:
        exc.who = who
        raise
    return Launch(platform=platform, claims=claims, deployment_id=dep)
