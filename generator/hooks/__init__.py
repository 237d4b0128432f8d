"""Plugin hooks (pluggy): the extension points around generation and requests (see specs.py)."""

from generator.hooks.decisions import Decision
from generator.hooks.manager import create_plugin_manager, hookimpl

__all__ = ["Decision", "create_plugin_manager", "hookimpl"]
