"""The tool's RSA keys: generated once per deployment, kept in the database, rotatable, published as a JWKS."""
from __future__ import annotations

import secrets
from datetime import timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from podium.core.lti.models import LtiKey
from podium.core.models import utcnow

# Platforms cache the tool's JWKS; a retired key must stay published until their caches have let it go.
RETIRED_KEYS_PUBLISHED_FOR = timedelta(days=2)


def new_private_pem() -> str:
    """A 2048-bit RSA private key as PKCS#8 PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _active(session: Session) -> LtiKey | None:
    return session.scalars(select(LtiKey).where(LtiKey.retired_at.is_(None)).order_by(LtiKey.id.desc())).first()


def current_key(session: Session) -> LtiKey:
    """The newest unretired key, created (and committed) on first use."""
    key = _active(session)
    if key is None:
        key = LtiKey(kid=secrets.token_urlsafe(12), private_pem=new_private_pem())
        session.add(key)
        session.commit()
    return key


def rotate_key(session: Session) -> LtiKey:
    """Retire the current key and sign with a new one from now on (`podium lti rotate-key`)."""
    now = utcnow()
    for key in session.scalars(select(LtiKey).where(LtiKey.retired_at.is_(None))):
        key.retired_at = now
    key = LtiKey(kid=secrets.token_urlsafe(12), private_pem=new_private_pem())
    session.add(key)
    session.commit()
    return key


def public_jwk(key: LtiKey) -> dict:
    """The public half of a key as a JWK."""
    private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
    jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwk.update(kid=key.kid, alg="RS256", use="sig")
    return jwk


def jwks(session: Session) -> dict:
    """The key set served at /lti/jwks: the current key and the recently retired ones."""
    current_key(session)
    cutoff = utcnow() - RETIRED_KEYS_PUBLISHED_FOR
    keys = session.scalars(select(LtiKey).where(or_(LtiKey.retired_at.is_(None), LtiKey.retired_at > cutoff))
                           .order_by(LtiKey.id.desc()))
    return {"keys": [public_jwk(k) for k in keys]}
