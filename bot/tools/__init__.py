"""Function tools: the registry, the built-ins, plugin discovery and the runner."""

from bot.tools.builtins import BUILTIN_TOOLS
from bot.tools.errors import ToolError
from bot.tools.registry import ENTRY_POINT_GROUP, Tool, ToolContext, ToolRegistry, function_names
from bot.tools.runner import ToolCall, ToolOutcome, ToolRunner

__all__ = [
    "BUILTIN_TOOLS",
    "ENTRY_POINT_GROUP",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolError",
    "ToolOutcome",
    "ToolRegistry",
    "ToolRunner",
    "build_registry",
    "function_names",
]


def build_registry(*, plugins: bool = True) -> ToolRegistry:
    """The built-in tools plus every installed plugin's (see `ToolRegistry.load_plugins`)."""
    registry = ToolRegistry(BUILTIN_TOOLS)
    if plugins:
        registry.load_plugins()
    return registry
