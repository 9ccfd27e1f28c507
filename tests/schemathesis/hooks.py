"""Schemathesis hooks for .ci/schemathesis: fresh identity tokens and fresh
upload credentials, so that generated requests get past 401 to the checks
behind it.

- Every mint request carries a fresh identity token from the test issuer
  (its replay check refuses a token twice). Only a `token` (crates.io:
  `jwt`) that is a string is replaced: a body whose token has the wrong type
  is meant to be refused and stays as generated.
- Every request that presents the upload credential the script configured
  presents a freshly minted one of the right registry instead: the run
  itself revokes credentials (burn-token, the admin API's revocations), and
  the cargo gateway wants a credential of the cargo registry.

The issuer is the conformance kit's (`trustpub-conformance issuer`), whose
GitHub Actions token endpoint signs the kit's claims for any audience. The
script passes the URLs, the audiences and the configured credential in the
environment.
"""

import base64
import json
import os
import urllib.parse
import urllib.request

import schemathesis

BASE = os.environ["SCHEMATHESIS_TRUSTPUB_BASE"]
ISSUER = os.environ["SCHEMATHESIS_TRUSTPUB_ISSUER"]
PYTHON_AUDIENCE = os.environ["SCHEMATHESIS_TRUSTPUB_PYTHON_AUDIENCE"]
CARGO_AUDIENCE = os.environ["SCHEMATHESIS_TRUSTPUB_CARGO_AUDIENCE"]
CONFIGURED_CREDENTIAL = os.environ["SCHEMATHESIS_TRUSTPUB_CREDENTIAL"]
# What the test issuer's Actions endpoint wants (ACTIONS_REQUEST_TOKEN in
# src/testing/mod.rs): a fixed test value, not a secret.
ACTIONS_REQUEST_TOKEN = "test-actions-request-token"

PYTHON = ("pypi", PYTHON_AUDIENCE)
CARGO = ("crates", CARGO_AUDIENCE)

# operationId -> (the body member holding the identity token, its audience)
MINTS = {
    "mintToken": ("token", PYTHON_AUDIENCE),
    "pypiMintToken": ("token", PYTHON_AUDIENCE),
    "pypiGithubMintToken": ("token", PYTHON_AUDIENCE),
    "cratesMint": ("jwt", CARGO_AUDIENCE),
}

# operationId -> the registry whose credential it takes
CREDENTIALS = {
    "forwardAuth": PYTHON,
    "gatewayPythonUpload": PYTHON,
    "gatewayCargoPublish": CARGO,
}


def identity_token(audience: str) -> str:
    query = urllib.parse.urlencode({"audience": audience})
    request = urllib.request.Request(
        f"{ISSUER}/actions/id-token?api-version=2.0&{query}",
        headers={"Authorization": f"Bearer {ACTIONS_REQUEST_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["value"]


def upload_credential(registry: str, audience: str) -> str:
    request = urllib.request.Request(
        f"{BASE}/_/trustpub/{registry}/mint-token",
        data=json.dumps({"token": identity_token(audience)}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["token"]


def basic_user(value: str) -> str | None:
    """The user of a Basic Authorization value whose password is the
    configured credential."""
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None
    return user if password == CONFIGURED_CREDENTIAL else None


def with_fresh_credential(value: str, registry: tuple[str, str]) -> str:
    """The Authorization value with the configured credential replaced by a
    fresh one; any other value as it is."""
    if CONFIGURED_CREDENTIAL in value:
        return value.replace(CONFIGURED_CREDENTIAL, upload_credential(*registry))
    user = basic_user(value)
    if user is not None:
        pair = f"{user}:{upload_credential(*registry)}"
        return "Basic " + base64.b64encode(pair.encode()).decode()
    return value


@schemathesis.hook
def before_call(context, case, kwargs):
    operation = case.operation.definition.raw.get("operationId")
    mint = MINTS.get(operation)
    if mint is not None and isinstance(case.body, dict):
        member, audience = mint
        if isinstance(case.body.get(member), str):
            case.body[member] = identity_token(audience)
    registry = CREDENTIALS.get(operation)
    if registry is not None and case.headers:
        for name, value in list(case.headers.items()):
            if name.lower() == "authorization" and isinstance(value, str):
                case.headers[name] = with_fresh_credential(value, registry)

