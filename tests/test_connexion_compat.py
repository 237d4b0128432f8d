"""Connexion's private API that generator/api/connexion_compat.py relies on. These fail when a Connexion
release changes it, so an upgrade is caught here rather than by a slow or broken generation."""

from __future__ import annotations

import inspect

from connexion import AsyncApp
from connexion.spec import OpenAPISpecification

from generator.api.connexion_compat import prebuild, trusted_specification

DOCUMENT = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}


def test_spec_validation_is_a_classmethod_we_can_shadow_and_restore() -> None:
    original = inspect.getattr_static(OpenAPISpecification, "_validate_spec", None)
    assert original is not None, "OpenAPISpecification._validate_spec is gone: update connexion_compat"
    assert "_validate_spec" not in OpenAPISpecification.__dict__, "expected it inherited, so `del` restores it"
    invalid = {"openapi": "3.0.3", "paths": {}}  # no `info`: Connexion refuses it when validating
    with trusted_specification():
        OpenAPISpecification(invalid)  # accepted: validation skipped
    try:
        OpenAPISpecification(invalid)
    except Exception as exc:  # noqa: BLE001 - any refusal shows validation is back
        assert "info" in str(exc)
    else:
        raise AssertionError("validation was not restored after trusted_specification()")


def test_the_middleware_stack_can_be_built_before_the_first_request() -> None:
    app = AsyncApp(__name__)
    app.add_api(DOCUMENT)
    assert hasattr(app.middleware, "_build_middleware_stack"), "update connexion_compat.prebuild"
    prebuild(app)
    assert app.middleware.middleware_stack is not None
    assert app.middleware.app is not None
