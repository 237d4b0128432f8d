"""The plugin manager: our specs, default plugins, then third-party plugins from entry points."""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from generator.hooks import specs

hookimpl = pluggy.HookimplMarker("drg")
ENTRY_POINT_GROUP = "drg"


def create_plugin_manager(plugins: Iterable[object] = (), defaults: Iterable[object] = ()) -> pluggy.PluginManager:
    """`defaults` (our own behaviour) are registered first, then `plugins`, then entry points: pluggy calls the
    last registered first, so a third party's `firstresult` answer comes before our default policy's."""
    manager = pluggy.PluginManager("drg")
    manager.add_hookspecs(specs)
    for plugin in [*defaults, *plugins]:
        manager.register(plugin)
    manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    manager.check_pending()
    return manager
