"""An LTI 1.3 platform (LMS) stand-in served over HTTP, for tests: its own RSA keys and JWKS, OIDC auth endpoint
signing real launches, an OAuth 2 token endpoint checking the tool's signed assertion, AGS and NRPS endpoints.

Over plain HTTP, the tool's cookies are still `SameSite=None; Secure` as in production. Chromium treats
http://127.0.0.1 and http://localhost as potentially trustworthy and keeps Secure cookies there; requests
(http.cookiejar) does not, so browser_session() gives a requests session whose cookie policy does the same.
"""
from __future__ import annotations

import html
import secrets
import threading
import time
import uuid
from html.parser import HTMLParser
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify, request
from jwt.algorithms import RSAAlgorithm
from werkzeug.serving import make_server

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
SCOPES = {"score": "https://purl.imsglobal.org/spec/lti-ags/scope/score",
          "lineitem": "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
          "lineitem.readonly": "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
          "nrps": "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"}
CONTEXT = "course-101"


def _rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Platform:
    """A fake LMS: keys + JWKS, OIDC auth, token endpoint, AGS, NRPS; records what it saw."""

    def __init__(self, client_id: str = "podium-client", deployment_id: str = "dep-1", host: str = "127.0.0.1"):
        self.client_id, self.deployment_id, self.host = client_id, deployment_id, host
        self.keys: dict[str, object] = {}          # kid -> private key, all published
        self.kid = self.rotate_key(keep_old=False)
        self.tool_jwks_url: str | None = None
        self.tool_url: str | None = None
        self.redirect_uris: list[str] = []
        self.pending: dict[str, dict] = {}          # login_hint -> {"claims", "forge"}
        self.auth_requests: list[dict] = []
        self.jwks_hits = 0
        self.token_requests: list[dict] = []
        self.tokens: dict[str, tuple[set, float]] = {}
        self.token_ttl = 3600
        self.seen_jti: set[str] = set()
        self.lineitems: dict[int, dict] = {}
        self.scores: list[dict] = []
        self.score_failures = 0                     # answer 500 to this many score POSTs
        self.members: list[dict] = []
        self._srv = None
        self._jwk_client = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> Platform:
        """Serve on a free 127.0.0.1 port in a daemon thread."""
        self._srv = make_server("127.0.0.1", 0, self._app(), threaded=True)
        self.url = f"http://{self.host}:{self._srv.server_port}"
        threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        self._srv.shutdown()

    @property
    def issuer(self) -> str:
        return self.url

    def registration(self) -> dict:
        """The add-platform arguments for this platform."""
        return {"issuer": self.issuer, "client_id": self.client_id,
                "deployment_id": self.deployment_id, "login_url": self.url + "/auth",
                "token_url": self.url + "/token", "jwks_url": self.url + "/jwks"}

    def register_tool(self, jwks_url: str, redirect_uri: str) -> None:
        """What the LMS admin pastes: the tool's JWKS URL and launch (redirect) URL."""
        self.tool_jwks_url, self.redirect_uris = jwks_url, [redirect_uri]
        self.tool_url = redirect_uri.rsplit("/lti/", 1)[0]
        self._jwk_client = jwt.PyJWKClient(jwks_url, cooldown_duration=0)

    # -- keys -------------------------------------------------------------------------------
    def rotate_key(self, keep_old: bool = True) -> str:
        """Start signing with a new key; drop the old ones from the JWKS unless keep_old."""
        kid = "plat-" + secrets.token_hex(4)
        if not keep_old:
            self.keys.clear()
        self.keys[kid] = _rsa_key()
        self.kid = kid
        return kid

    def jwks(self) -> dict:
        """The published key set."""
        out = []
        for kid, key in self.keys.items():
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": out}

    def sign(self, claims: dict, *, key=None, kid: str | None = None, alg: str = "RS256") -> str:
        """Sign an id_token (defaults: current key and kid)."""
        if alg == "none":
            return jwt.encode(claims, None, algorithm="none")
        return jwt.encode(claims, _pem(key or self.keys[self.kid]), algorithm=alg,
                          headers={"kid": kid or self.kid})

    # -- launches ---------------------------------------------------------------------------
    def claims(self, sub: str, role: str = "Learner", *, challenge: str | None = "cnn-1",
               name: str | None = None, email: str | None = None, ags: str = "lineitem",
               nrps: bool = True, resource_link: str = "rl-1",
               target: str | None = None) -> dict:
        """LTI claims for a resource-link launch (ags: 'lineitem', 'lineitems' or '')."""
        claims = {
            "sub": sub, "name": name or sub.title(), "email": email or f"{sub}@uni.example",
            LTI + "message_type": "LtiResourceLinkRequest", LTI + "version": "1.3.0",
            LTI + "deployment_id": self.deployment_id,
            LTI + "target_link_uri": target or (self.redirect_uris[0] if self.redirect_uris
                                                else ""),
            LTI + "resource_link": {"id": resource_link, "title": "CNN challenge"},
            LTI + "roles": [ROLE + role],
            LTI + "context": {"id": CONTEXT, "label": "CS101", "title": "Intro to CNNs"},
        }
        if challenge:
            claims[LTI + "custom"] = {"challenge": challenge}
        base = f"{self.url}/ags/{CONTEXT}/lineitems"
        if ags == "lineitem":
            self.lineitems.setdefault(1, {"id": f"{base}/1/lineitem?type_id=1",
                                          "scoreMaximum": 1, "label": "CNN",
                                          "resourceLinkId": resource_link})
            claims[AGS] = {"scope": [SCOPES["score"], SCOPES["lineitem.readonly"]],
                           "lineitems": f"{base}?type_id=1",
                           "lineitem": f"{base}/1/lineitem?type_id=1"}
        elif ags == "lineitems":
            claims[AGS] = {"scope": [SCOPES["score"], SCOPES["lineitem"]],
                           "lineitems": f"{base}?type_id=1"}
        if nrps:
            claims[NRPS] = {"context_memberships_url": f"{self.url}/nrps/{CONTEXT}/memberships",
                            "service_versions": ["2.0"]}
        return claims

    def expect_login(self, claims: dict, forge: str | None = None) -> str:
        """Queue claims for the next auth request with login_hint = sub; returns the hint."""
        self.pending[claims["sub"]] = {"claims": claims, "forge": forge}
        return claims["sub"]

    def _id_token(self, pending: dict, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "azp": self.client_id,
                  "iat": now, "exp": now + 300, "nonce": nonce, **pending["claims"]}
        forge = pending["forge"]
        if forge == "wrong_aud":
            claims["aud"], claims["azp"] = "someone-else", "someone-else"
        elif forge == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 600
        elif forge == "unknown_deployment":
            claims[LTI + "deployment_id"] = "dep-nobody-registered"
        elif forge == "foreign_azp":               # we are one audience, authorised party is not us
            claims["aud"], claims["azp"] = [self.client_id, "someone-else"], "someone-else"
        elif forge == "wrong_nonce":
            claims["nonce"] = "n-" + secrets.token_hex(8)
        elif forge == "wrong_iss":                 # signed by this platform's key, claiming to be another LMS
            claims["iss"] = "https://other-lms.example"
        elif forge == "future_iat":
            claims["iat"], claims["exp"] = now + 3600, now + 3900
        elif forge == "wrong_version":
            claims[LTI + "version"] = "1.1"
        elif forge == "wrong_message_type":
            claims[LTI + "message_type"] = "LtiDeepLinkingRequest"
        if forge == "bad_signature":             # same kid, key the JWKS does not have
            return self.sign(claims, key=_rsa_key())
        if forge == "unknown_kid":
            return self.sign(claims, key=_rsa_key(), kid="plat-unpublished")
        if forge == "alg_none":
            return self.sign(claims, alg="none")
        return self.sign(claims)

    # -- service auth -----------------------------------------------------------------------
    def _check_bearer(self, scope_key: str):
        auth = request.headers.get("Authorization", "")
        entry = self.tokens.get(auth.removeprefix("Bearer "))
        if not auth.startswith("Bearer ") or entry is None or entry[1] < time.time():
            return jsonify(error="invalid_token"), 401
        if SCOPES[scope_key] not in entry[0]:
            return jsonify(error="insufficient_scope"), 403
        return None

    def revoke_tokens(self) -> None:
        """Forget every issued access token (next service call gets 401)."""
        self.tokens.clear()

    def _token(self):
        form = request.form
        self.token_requests.append(dict(form))
        if (form.get("grant_type") != "client_credentials" or form.get("client_assertion_type")
                != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"):
            return jsonify(error="unsupported_grant_type"), 400
        assertion = form.get("client_assertion", "")
        try:
            key = self._jwk_client.get_signing_key_from_jwt(assertion)
            claims = jwt.decode(assertion, key, algorithms=["RS256"], audience=self.url + "/token",
                                issuer=self.client_id,
                                options={"require": ["exp", "iat", "jti", "sub"]})
        except (jwt.PyJWTError, AttributeError) as exc:
            return jsonify(error="invalid_client", error_description=str(exc)), 401
        if claims["sub"] != self.client_id or claims["jti"] in self.seen_jti:
            return jsonify(error="invalid_client", error_description="sub or jti"), 401
        self.seen_jti.add(claims["jti"])
        scopes = set(form.get("scope", "").split())
        token = secrets.token_urlsafe(24)
        self.tokens[token] = (scopes, time.time() + self.token_ttl)
        return jsonify(access_token=token, token_type="Bearer", expires_in=self.token_ttl,
                       scope=" ".join(sorted(scopes)))

    # -- app --------------------------------------------------------------------------------
    def _app(self) -> Flask:
        app = Flask("lti_platform")

        @app.get("/jwks")
        def jwks():
            self.jwks_hits += 1
            return jsonify(self.jwks())

        @app.get("/auth")
        def auth():
            q = request.args
            self.auth_requests.append(dict(q))
            bad = [k for k, v in {"scope": "openid", "response_type": "id_token",
                                  "response_mode": "form_post", "prompt": "none",
                                  "client_id": self.client_id}.items() if q.get(k) != v]
            if bad or q.get("redirect_uri") not in self.redirect_uris or not q.get("nonce"):
                return f"bad auth request: {bad or 'redirect_uri/nonce'}", 400
            pending = self.pending.get(q.get("login_hint", ""))
            if pending is None:
                return "unknown login_hint", 400
            token = self._id_token(pending, q["nonce"])
            fields = {"id_token": token, "state": q.get("state", "")}
            inputs = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
                             for k, v in fields.items())
            return (f'<form id="lti" method="post" action="{html.escape(q["redirect_uri"])}">'
                    f'{inputs}</form><script>document.getElementById("lti").submit()</script>')

        app.post("/token")(self._token)

        @app.route("/ags/<ctx>/lineitems", methods=["GET", "POST"])
        def lineitems(ctx):
            if request.method == "GET":
                denied = self._check_bearer("lineitem")
                if denied:
                    return denied
                items = [i for i in self.lineitems.values()
                         if request.args.get("resource_link_id") in (None, i.get("resourceLinkId"))
                         and request.args.get("tag") in (None, i.get("tag"))]
                return jsonify(items)
            denied = self._check_bearer("lineitem")
            if denied:
                return denied
            n = max(self.lineitems, default=0) + 1
            item = {**request.get_json(force=True),
                    "id": f"{self.url}/ags/{ctx}/lineitems/{n}/lineitem?type_id=1"}
            self.lineitems[n] = item
            return jsonify(item), 201

        @app.post("/ags/<ctx>/lineitems/<int:n>/lineitem/scores")
        def scores(ctx, n):
            denied = self._check_bearer("score")
            if denied:
                return denied
            if self.score_failures > 0:
                self.score_failures -= 1
                return "platform is having a bad day", 500
            if request.content_type != "application/vnd.ims.lis.v1.score+json":
                return "wrong content type", 415
            if n not in self.lineitems or request.args.get("type_id") != "1":
                return "no such line item", 404
            body = request.get_json(force=True)
            self.scores.append({"lineitem": n, "body": body,
                                "token": request.headers["Authorization"][7:]})
            return "", 204

        @app.get("/nrps/<ctx>/memberships")
        def memberships(ctx):
            denied = self._check_bearer("nrps")
            if denied:
                return denied
            page, size = int(request.args.get("page", 1)), 2
            chunk = self.members[(page - 1) * size: page * size]
            resp = jsonify({"id": request.url, "context": {"id": ctx}, "members": chunk})
            resp.content_type = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
            if page * size < len(self.members):
                resp.headers["Link"] = f'<{request.base_url}?page={page + 1}>; rel="next"'
            return resp


        @app.get("/course")
        def course_page():
            """The LMS's course page, framing the tool like Canvas and Moodle do (?hint=<sub> to launch)."""
            hint = request.args["hint"]
            pending = self.pending[hint]["claims"]
            src = f"{self.tool_url}/lti/login?" + urlencode({
                "iss": self.issuer, "login_hint": hint, "client_id": self.client_id,
                "lti_deployment_id": self.deployment_id, "target_link_uri": pending[LTI + "target_link_uri"]})
            return (f'<h1>Intro to CNNs</h1><iframe id="tool" name="tool" src="{html.escape(src)}" '
                    f'style="width:100%;height:800px"></iframe>')

        return app


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.action, self.fields = None, {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.action = attrs.get("action")
        elif tag == "input":
            self.fields[attrs["name"]] = attrs.get("value", "")


def auto_post_form(page: str) -> tuple[str, dict]:
    """(action, fields) of the platform's auto-submitting form."""
    parser = _FormParser()
    parser.feed(page)
    return parser.action, parser.fields


def launch(browser: requests.Session, platform: Platform, tool_url: str, claims: dict, *,
           forge: str | None = None, method: str = "GET") -> tuple[requests.Response, dict]:
    """Run login -> auth -> launch like a browser; returns (launch response, posted form)."""
    hint = platform.expect_login(claims, forge)
    params = {"iss": platform.issuer, "login_hint": hint, "client_id": platform.client_id,
              "target_link_uri": claims[LTI + "target_link_uri"],
              "lti_message_hint": "msg-" + uuid.uuid4().hex[:6],
              "lti_deployment_id": platform.deployment_id}
    login_url = tool_url + "/lti/login"
    resp = (browser.get(login_url, params=params, allow_redirects=False) if method == "GET"
            else browser.post(login_url, data=params, allow_redirects=False))
    assert resp.status_code == 302, resp.text
    auth = browser.get(resp.headers["Location"], allow_redirects=False)
    assert auth.status_code == 200, auth.text
    action, fields = auto_post_form(auth.text)
    return browser.post(action, data=fields, allow_redirects=False), fields


def login_query(resp: requests.Response) -> dict:
    """The query of the tool's redirect to the platform's auth endpoint."""
    return {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}



class _Browser(requests.Session):
    """requests.Session whose Cookie header follows SECURE_ON_HTTP (requests merges jars and drops their policy)."""

    def prepare_request(self, request):
        prepared = super().prepare_request(request)
        jar = requests.cookies.RequestsCookieJar()
        jar.set_policy(SECURE_ON_HTTP)
        jar.update(self.cookies)
        jar.update(requests.cookies.cookiejar_from_dict(request.cookies or {}))
        prepared.headers.pop("Cookie", None)
        prepared.prepare_cookies(jar)
        return prepared


SECURE_ON_HTTP = DefaultCookiePolicy(secure_protocols=("https", "wss", "http"))


def browser_session() -> requests.Session:
    """A requests session that, like Chromium, sends Secure cookies to http://127.0.0.1 and http://localhost."""
    return _Browser()
