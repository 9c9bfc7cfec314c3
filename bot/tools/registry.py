"""Function tools the model may call: what a tool is, the registry of them, plugin discovery.

A plugin is a Python package declaring an entry point in the `switchboard.tools` group whose
object is a `Tool`, or a callable with no arguments returning a `Tool` or an iterable of them.
A plugin that fails to import or yields something else is logged and skipped: one broken
package never stops the bot.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from bot.core.types import ConversationKey
from storage.db import Database

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "switchboard.tools"
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Where and for whom a tool runs (a tool must not reach beyond this channel). `db` is the
    bot's database for `in_process` built-ins only; in a worker process it is None."""

    key: ConversationKey
    user_id: str
    db: Database | None


ToolFunction = Callable[[dict[str, Any], ToolContext], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Tool:
    """One function the model may call. `parameters` is the JSON schema of its arguments (an
    object schema); arguments are validated against it before `run` is called.

    Tools run in a worker process with a hard timeout (`bot.tools.workers`), found there by
    name. `in_process`: run on the bot's event loop instead, with the database at hand; for
    built-ins that only await I/O (a plugin's setting is ignored: plugins always run apart)."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    run: ToolFunction = field(repr=False)
    in_process: bool = False

    def problems(self) -> list[str]:
        """Why this tool cannot be offered to a model (empty when it can)."""
        found = []
        if not isinstance(self.name, str) or not NAME.match(self.name):
            found.append(f"name {self.name!r} must be 1-64 letters, digits, '_' or '-'")
        if not isinstance(self.description, str):
            found.append("description must be text")
        if not callable(self.run):
            found.append("run is not callable")
        if not isinstance(self.parameters, Mapping) or self.parameters.get("type") != "object":
            found.append("parameters must be a JSON schema of type object")
        else:
            try:
                Draft202012Validator.check_schema(dict(self.parameters))
            except SchemaError as exc:
                found.append(f"parameters are not a valid JSON schema: {exc.message}")
        return found


class ToolRegistry:
    """The tools this deployment has, by name. Built once at start-up and shared."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._origins: dict[str, str] = {}
        self._validators: dict[str, Draft202012Validator] = {}
        self.skipped: list[str] = []  # why tools were left out, for `python -m bot doctor`
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool, *, origin: str = "built-in") -> bool:
        """Register `tool`; a tool that is malformed or reuses a name is logged and skipped."""
        problems = tool.problems() if isinstance(tool, Tool) else ["not a switchboard Tool"]
        if not problems and tool.name in self._tools:
            problems = [f"the name {tool.name!r} is already taken"]
        if problems:
            self.skipped.append(f"tool from {origin} skipped: {'; '.join(problems)}")
            log.error("%s", self.skipped[-1])
            return False
        if origin != "built-in" and tool.in_process:
            tool = dataclasses.replace(tool, in_process=False)  # plugins always run apart
        self._tools[tool.name] = tool
        self._origins[tool.name] = origin
        self._validators[tool.name] = Draft202012Validator(dict(tool.parameters))
        return True

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._tools)

    @property
    def builtin_names(self) -> frozenset[str]:
        """The tools shipped with the bot (the rest come from plugins)."""
        return frozenset(n for n, origin in self._origins.items() if origin == "built-in")

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def validator(self, name: str) -> Draft202012Validator:
        return self._validators[name]

    def __len__(self) -> int:
        return len(self._tools)

    def load_plugins(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Add the tools of every installed plugin; return the names added."""
        added: list[str] = []
        for point in entry_points(group=group):
            origin = f"plugin {point.name} ({point.value})"
            try:
                loaded = point.load()
                tools = _tools_of(loaded)
            except Exception as exc:  # a broken plugin must not stop the bot
                self.skipped.append(f"{origin} could not be loaded: {type(exc).__name__}: {exc}")
                log.error("%s", self.skipped[-1])
                continue
            for tool in tools:
                if self.add(tool, origin=origin):
                    added.append(tool.name)
        if added:
            log.info("plugin tools loaded: %s", ", ".join(sorted(added)))
        return added


def _tools_of(loaded: object) -> list[Any]:
    if isinstance(loaded, Tool):
        return [loaded]
    if callable(loaded):
        made = loaded()
        if isinstance(made, Tool):
            return [made]
        if isinstance(made, Iterable) and not isinstance(made, (str, bytes, Mapping)):
            return list(made)
        raise TypeError(f"the factory returned {type(made).__name__}, not Tool(s)")
    raise TypeError(f"the entry point is a {type(loaded).__name__}, not a Tool or a factory")


def function_names(tools: Iterable[str]) -> list[str]:
    """The function names an assistant's `tools` setting enables ("functions:a,b" entries)."""
    names: list[str] = []
    for entry in tools:
        if entry.startswith("functions:"):
            names += [n.strip() for n in entry.removeprefix("functions:").split(",") if n.strip()]
    return list(dict.fromkeys(names))
