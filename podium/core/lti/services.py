"""LTI Advantage service calls: OAuth 2 client-credentials token (cached until it expires), AGS scores, NRPS."""
from __future__ import annotations

import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import jwt
import requests
from sqlalchemy.orm import Session

from podium.core.lti.keys import current_key
from podium.core.lti.models import LtiPlatform, LtiResourceLink

SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
LINEITEM_RO = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
TIMEOUT = (3, 10)   # connect, read: a platform that is down holds a worker for seconds, not minutes
EARLY_S = 60        # a token is renewed this long before it expires


class ServiceError(Exception):
    """A platform service call failed; the message names the URL and the HTTP status."""


class TokenCache:
    """Access tokens per (token URL, client id, scopes), kept until shortly before they expire."""

    def __init__(self):
        self._tokens: dict[tuple, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple) -> str | None:
        """A live token, or None."""
        with self._lock:
            hit = self._tokens.get(key)
            return hit[0] if hit and hit[1] > time.monotonic() else None

    def put(self, key: tuple, token: str, expires_in: float) -> None:
        """Keep a token for expires_in seconds (less the safety margin)."""
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + max(0.0, expires_in - EARLY_S))

    def drop(self, key: tuple) -> None:
        """Forget a token the platform refused."""
        with self._lock:
            self._tokens.pop(key, None)


TOKENS = TokenCache()  # per process: each worker process fetches its own token


def client_assertion(session: Session, platform: LtiPlatform) -> str:
    """The JWT signed by the tool's key that the platform's token endpoint asks for (RFC 7523)."""
    key, now = current_key(session), int(time.time())
    claims = {"iss": platform.client_id, "sub": platform.client_id, "aud": platform.token_url,
              "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid})


def _token_key(platform: LtiPlatform, scopes: list[str]) -> tuple:
    return (platform.token_url, platform.client_id, " ".join(sorted(scopes)))


def access_token(session: Session, platform: LtiPlatform, scopes: list[str]) -> str:
    """A bearer token for these scopes, from the cache or the token endpoint."""
    key = _token_key(platform, scopes)
    token = TOKENS.get(key)
    if token:
        return token
    resp = requests.post(platform.token_url, timeout=TIMEOUT, data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion(session, platform), "scope": key[2]})
    if not resp.ok:
        raise ServiceError(f"token endpoint {platform.token_url}: HTTP {resp.status_code} {resp.text[:200]}")
    body = resp.json()
    TOKENS.put(key, body["access_token"], float(body.get("expires_in", 3600)))
    return body["access_token"]


def call(session: Session, platform: LtiPlatform, scopes: list[str], method: str, url: str,
         **kwargs) -> requests.Response:
    """An authenticated service request; a 401 drops the cached token and tries once more."""
    base_headers = kwargs.pop("headers", {})
    for attempt in (1, 2):
        headers = {**base_headers, "Authorization": "Bearer " + access_token(session, platform, scopes)}
        resp = requests.request(method, url, headers=headers, timeout=TIMEOUT, **kwargs)
        if resp.status_code == 401 and attempt == 1:
            TOKENS.drop(_token_key(platform, scopes))
            continue
        if not resp.ok:
            raise ServiceError(f"{method} {url}: HTTP {resp.status_code} {resp.text[:200]}")
        return resp
    raise AssertionError("unreachable")


def scores_url(lineitem_url: str) -> str:
    """The line item URL + '/scores', keeping any query string (Moodle's is ...lineitem?type_id=N)."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


def ensure_line_item(session: Session, rlink: LtiResourceLink, label: str, tag: str) -> str | None:
    """The placement's line item URL: from the launch, found by tag, or created where the claim allows it."""
    if rlink.lineitem_url:
        return rlink.lineitem_url
    if not rlink.lineitems_url or LINEITEM not in (rlink.ags_scopes or []):
        return None
    media = "application/vnd.ims.lis.v2.lineitem+json"
    found = call(session, rlink.platform, [LINEITEM], "GET", rlink.lineitems_url,
                 params={"resource_link_id": rlink.resource_link_id, "tag": tag},
                 headers={"Accept": "application/vnd.ims.lis.v2.lineitemcontainer+json"}).json()
    if found:
        rlink.lineitem_url = found[0]["id"]
    else:
        created = call(session, rlink.platform, [LINEITEM], "POST", rlink.lineitems_url,
                       json={"scoreMaximum": 1, "label": label, "tag": tag, "resourceLinkId": rlink.resource_link_id},
                       headers={"Content-Type": media, "Accept": media}).json()
        rlink.lineitem_url = created["id"]
    session.commit()
    return rlink.lineitem_url


def post_score(session: Session, platform: LtiPlatform, lineitem_url: str, user_sub: str, score: float, *,
               final: bool, timestamp: str) -> None:
    """POST one AGS score (scoreMaximum 1); raises ServiceError when the platform refuses it."""
    body = {"userId": user_sub, "scoreGiven": score, "scoreMaximum": 1,
            "activityProgress": "Completed" if final else "Submitted",
            "gradingProgress": "FullyGraded" if final else "Pending",
            "timestamp": timestamp}
    call(session, platform, [SCORE], "POST", scores_url(lineitem_url), json=body,
         headers={"Content-Type": "application/vnd.ims.lis.v1.score+json"})


def fetch_roster(session: Session, rlink: LtiResourceLink) -> list[dict]:
    """Every NRPS member of the placement's course, following rel="next" pages."""
    if not rlink.nrps_url:
        raise ServiceError("this placement's launches offered no Names and Role Provisioning Service")
    members: list[dict] = []
    url: str | None = rlink.nrps_url
    while url:
        resp = call(session, rlink.platform, [NRPS_SCOPE], "GET", url,
                    headers={"Accept": "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"})
        members.extend(resp.json().get("members", []))
        url = resp.links.get("next", {}).get("url")
    return members
