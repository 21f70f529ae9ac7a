import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config):
    # On a failing example hypothesis imports libcst (to write a patch), whose
    # installed version subclasses mypy_extensions.TypedDict: a DeprecationWarning
    # that filterwarnings=error turns into an INTERNALERROR ending the whole run
    # and hiding the failure. Ignore exactly that warning.
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")
    # .ci/sanitize.sh names the directory of its sanitized core: every process
    # running tests (also pytest-xdist's workers) must import that one
    if want := os.environ.get("BFA_EXPECT_CORE_IN"):
        from bfast_archive import _bfa_core

        if not _bfa_core.__file__.startswith(want):
            raise pytest.UsageError(f"the core under test is {_bfa_core.__file__}, not one in {want}")


# Real servers for the remote-archive tests (tests/support/servers.py), on
# 127.0.0.1, started once, stopped at the end, their threads checked gone.
@pytest.fixture(scope="session")
def http_server():
    from tests.support.servers import RangeServer

    server = RangeServer().start()
    yield server
    server.stop()
    assert server.threads_alive() == []


@pytest.fixture(scope="session")
def s3_server():
    from tests.support.servers import S3Server

    server = S3Server().start()
    server.client().create_bucket(Bucket="bkt")  # (tests.support.servers.Remote's)
    yield server
    server.stop()
    assert server.threads_alive() == []


@pytest.fixture(params=["http", "s3"])
def remote(request):
    """Each remote test once against the HTTP range server, once against S3."""
    from tests.support.servers import Remote

    server = request.getfixturevalue(f"{request.param}_server")
    yield Remote(server)
    server.latency = 0.0
