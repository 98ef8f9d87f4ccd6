"""OAuth2 for connectors: the token endpoint, the vault of live tokens, and the consent flow.

A connector asks ``TokenVault.access_token()`` before each request; the vault refreshes ahead of
expiry, once per connection across threads and processes, and commits a rotated refresh token
before the new access token is used. See ``syncd.oauth.vault`` for the locking and crash recovery.
"""

from syncd.oauth.consent import Consent, consent_url, run_authorization_code_flow
from syncd.oauth.endpoint import DEFAULT_TIMEOUT, InvalidGrant, TokenEndpoint, TokenSet
from syncd.oauth.vault import REFRESH_LOCKS, RefreshLocks, TokenVault

__all__ = [
    "DEFAULT_TIMEOUT",
    "REFRESH_LOCKS",
    "Consent",
    "InvalidGrant",
    "RefreshLocks",
    "TokenEndpoint",
    "TokenSet",
    "TokenVault",
    "consent_url",
    "run_authorization_code_flow",
]
