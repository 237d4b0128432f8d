"""Plugin hooks (pluggy): the extension points around generation and requests."""

from generator.hooks.manager import create_plugin_manager, hookimpl

__all__ = ["create_plugin_manager", "hookimpl"]
