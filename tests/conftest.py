import os

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
