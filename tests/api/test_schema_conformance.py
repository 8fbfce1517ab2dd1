"""The API against its own OpenAPI schema: schemathesis generates requests for every
operation of /api/schema/ (valid and invalid ones, with and without credentials) and runs
all of its checks on every answer — no 500, documented status codes and content types,
bodies matching their schemas, headers, auth enforced. Bounded: a fixed number of examples
per operation, derandomized, so `make test` stays fast and repeatable."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.cache import cache
from django.test import Client
from hypothesis import HealthCheck, given, settings

from orgenv.models import ProjectVariable
from orgenv.tokens import token_issue
from tests.conftest import make_group

EXAMPLES = 40


@pytest.fixture
def api_schema(world, live_server):
    """The schema as the running server serves it, over real HTTP."""
    make_group(world.acme, "shared", access="all", variables={"REGISTRY": "r"}, secrets={"S": "s"})
    ProjectVariable.objects.create(project=world.web, name="MODE", value='it\'s "quoted"')
    return schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")


@pytest.fixture
def credentials(world) -> dict[str, str]:
    """A runner token for acme/web and bob's session (a member of acme/web)."""
    raw = token_issue(project=world.web, name="schemathesis")[1]
    client = Client()
    client.force_login(world.bob)
    session = client.cookies["sessionid"].value
    return {"Authorization": f"Bearer {raw}", "Cookie": f"sessionid={session}"}


def test_every_operation_conforms_to_the_schema(api_schema, credentials, live_server):
    # One test looping over the operations (schemathesis' pytest fixture loader does not run
    # under pytest 9): a failure names the operation and the request that broke it.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 2  # the runner and the member endpoints at least

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case) -> None:
            cache.clear()  # rate limits: every example starts with a fresh budget
            case.call_and_validate(base_url=live_server.url, headers=credentials)

        conforms()
