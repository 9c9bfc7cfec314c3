"""Check request and response bodies of loopback fakes against an OpenAPI description.

Generic: the OpenAI, Slack and Discord fakes share it. Usage::

    spec = load_spec("openai-openapi.yaml")         # relative names: testing/specs/
    problems = spec.check_request("POST", "/v1/responses", body)
    problems += spec.check_response("POST", "/v1/responses", 200, body)
    problems += spec.check_event("POST", "/v1/responses", sse_payload)  # text/event-stream
    problems += spec.check_component("ErrorResponse", body)  # any named schema

Every ``check_*`` returns a list of human-readable problem strings (empty = fine) and never
raises for a shape mismatch; callers decide whether to record or raise.

What is checked
  * The operation is found by matching the concrete path (query string dropped, the server's
    base path such as ``/v1`` or ``/api`` stripped) against the spec's path templates; literal
    segments win over ``{param}`` ones (``/responses/compact`` before ``/responses/{id}``).
    Path keys with a query part (OpenAI's ``/responses?beta=true`` twins) are ignored.
    A path or method the spec does not describe is reported as a problem.
  * Request bodies: OpenAPI 3 ``requestBody`` for the given content type (default JSON);
    Swagger 2.0 ``in: body`` parameters; Swagger 2.0 ``formData`` parameters only for the
    presence of required names (form values are strings, so their types are not checked).
  * Responses: the schema of the exact status, else ``4XX``-style ranges, else ``default``.
    An undocumented status (OpenAI documents only 200 and 429) is not checked: use
    ``check_component("ErrorResponse", ...)`` for error bodies instead.
  * Schemas are validated with JSON Schema Draft 2020-12 (OpenAPI 3.1's dialect); ``$ref``
    to anywhere in the document (``#/components/...``, ``#/definitions/...``) is resolved
    through a ``referencing`` registry holding the whole document.

OpenAPI-isms handled so they cause no false errors (the document is normalised once, on load)
  * ``nullable: true`` / ``x-nullable: true`` (3.0 / 2.0) become ``anyOf: [schema, null]``.
  * ``oneOf`` becomes ``anyOf``: real specs (OpenAI's in particular) have overlapping
    alternatives, e.g. an easy input message also matches the full message item, which
    makes a strict ``oneOf`` fail on perfectly valid payloads. Consequence: a value matching
    two alternatives at once is not reported.
  * Draft-4 boolean ``exclusiveMinimum``/``exclusiveMaximum`` become the numeric form;
    Swagger's ``type: file`` is dropped.
  * ``discriminator``, ``x-*``, ``example``, ``format``, ``readOnly``... are annotations:
    not asserted. In particular ``format`` (``date``, ``unixtime``, ``uri``) is not checked.

Tagged unions (``anyOf``/``oneOf`` whose alternatives each fix a ``type`` property, or the
``discriminator.propertyName``) are dispatched on the tag at the top level - an SSE payload is
validated against exactly its event schema (fast, precise messages; an unknown tag is a
problem) - and, when reporting nested errors, only the alternative whose tag matches is
explained instead of jsonschema's "is not valid under any of the given schemas".

What cannot be checked (deliberately skipped)
  * Unknown or misspelt *optional* fields: most spec objects do not set
    ``additionalProperties: false``, so extra keys pass.
  * Schemas the spec leaves empty or free-form (e.g. OpenAI ``ConversationResource.metadata``,
    Slack's "verbose schema is not available" templates) accept anything.
  * Headers, query and path parameters, status codes the spec omits, non-JSON bodies,
    ``[DONE]`` SSE sentinels, semantic rules written only in descriptions
    (mutually-exclusive parameters, max 16 metadata keys when the schema lacks it...).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

__all__ = ["SPECS_DIR", "Operation", "Spec", "load_spec"]

#: ``testing/specs``: where relative spec names passed to `load_spec` are looked up.
SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"

_URI = "urn:spec"
_MAX_PROBLEMS = 5  # per checked body: the first few are enough to fix a fake
_MAX_MESSAGE = 240

_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_ONE = frozenset(
    {
        "items",
        "additionalItems",
        "additionalProperties",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
    }
)
_UNION_ONLY = frozenset({"anyOf", "description", "title", "discriminator"})


def load_spec(path: str | Path) -> Spec:
    """Load (once per resolved path) an OpenAPI 3.x or Swagger 2.0 document, JSON or YAML.

    A relative ``path`` is taken relative to `SPECS_DIR` (the specs folder in this
    repository), so ``load_spec("openai-openapi.yaml")`` works from any working directory.
    """
    p = Path(path)
    if not p.is_absolute():
        p = SPECS_DIR / p
    return _load_resolved(str(p.resolve()))


@functools.lru_cache(maxsize=None)  # noqa: UP033 (the brief asks for lru_cache)
def _load_resolved(path: str) -> Spec:
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        document = json.loads(text)
    else:
        import yaml  # only needed for YAML specs

        document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return Spec(document, name=Path(path).name)


@dataclass(frozen=True)
class Operation:
    """One operation of the spec: ``method`` (lower case), path ``template``, and its object."""

    method: str
    template: str
    spec: dict[str, Any]
    path_item: dict[str, Any]


class Spec:
    """An OpenAPI document ready to check bodies. Build with `load_spec` (cached)."""

    def __init__(self, document: dict[str, Any], *, name: str = "spec") -> None:
        self.name = name
        self.swagger2 = str(document.get("swagger", "")).startswith("2")
        self.document = _normalise_document(document)
        self._registry = Registry().with_resource(_URI, DRAFT202012.create_resource(self.document))
        self._validators: dict[str, Draft202012Validator] = {}
        self._tag_maps: dict[str, tuple[str, dict[str, str]] | None] = {}
        if self.swagger2:
            base = document.get("basePath") or ""
        else:
            servers = document.get("servers") or [{}]
            base = urlsplit(servers[0].get("url", "")).path
        self.base_path = base.rstrip("/")
        # Templates grouped by segment count; most literal segments first.
        self._templates: dict[int, list[tuple[re.Pattern[str], str]]] = {}
        for template in document.get("paths", {}):
            if "?" in template:
                continue  # e.g. OpenAI's "/responses?beta=true" twins
            segments = template.strip("/").split("/")
            rx = "/".join(
                "[^/]+" if re.fullmatch(r"\{[^}]+\}", s) else re.escape(s) for s in segments
            )
            self._templates.setdefault(len(segments), []).append((re.compile(rx), template))
        for group in self._templates.values():
            group.sort(key=lambda t: -sum("{" not in s for s in t[1].split("/")))

    # -- operations -------------------------------------------------------------------------

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation for a concrete ``method`` and ``path`` (``/v1/...`` or bare)."""
        path = path.split("?", 1)[0]
        if self.base_path and (path == self.base_path or path.startswith(self.base_path + "/")):
            path = path[len(self.base_path) :]
        stripped = path.strip("/")
        for rx, template in self._templates.get(stripped.count("/") + 1, ()):
            if rx.fullmatch(stripped):
                item = self.document["paths"][template]
                op = item.get(method.lower())
                if op is not None:
                    return Operation(method.lower(), template, op, item)
        return None

    # -- public checks ----------------------------------------------------------------------

    def check_request(
        self, method: str, path: str, body: Any, content_type: str = "application/json"
    ) -> list[str]:
        """Problems with a request ``body`` (parsed JSON or form dict; None = no body)."""
        label = f"{method.upper()} {path} request"
        op = self.operation(method, path)
        if op is None:
            return [f"{label}: no such operation in {self.name}"]
        if self.swagger2:
            return self._check_swagger2_request(op, body, label)
        request_body = op.spec.get("requestBody")
        if request_body is None:
            return [] if body is None else [f"{label}: the operation takes no request body"]
        request_body, rb_ptr = self._deref(
            request_body, _pointer("paths", op.template, op.method, "requestBody")
        )
        if body is None:
            return [f"{label}: request body is required"] if request_body.get("required") else []
        content = request_body.get("content", {})
        if content_type not in content:
            return [f"{label}: content type {content_type} not documented ({', '.join(content)})"]
        if "schema" not in content[content_type]:
            return []
        return self._check(_join(rb_ptr, "content", content_type, "schema"), body, label)

    def check_response(
        self,
        method: str,
        path: str,
        status: int,
        body: Any,
        content_type: str = "application/json",
    ) -> list[str]:
        """Problems with a response ``body`` (parsed JSON) sent with ``status``."""
        label = f"{method.upper()} {path} {status} response"
        op = self.operation(method, path)
        if op is None:
            return [f"{label}: no such operation in {self.name}"]
        found = self._response_schema_pointer(op, status, content_type)
        if isinstance(found, str) and found.startswith("!"):
            return [f"{label}: {found[1:]}"]
        if found is None:
            return []
        return self._check(found, body, label)

    def check_event(self, method: str, path: str, event: Any, status: int = 200) -> list[str]:
        """Problems with one server-sent event's JSON ``data`` (``text/event-stream`` schema)."""
        return self.check_response(method, path, status, event, content_type="text/event-stream")

    def check_component(self, name: str, instance: Any, *, label: str | None = None) -> list[str]:
        """Problems with ``instance`` against a named schema (``components/schemas`` in
        OpenAPI 3, ``definitions`` in Swagger 2.0)."""
        where = ("definitions",) if self.swagger2 else ("components", "schemas")
        if name not in _get(self.document, where, {}):
            return [f"{label or name}: no schema {name!r} in {self.name}"]
        return self._check(_pointer(*where, name), instance, label or name)

    # -- internals --------------------------------------------------------------------------

    def _check_swagger2_request(self, op: Operation, body: Any, label: str) -> list[str]:
        params = [*op.path_item.get("parameters", []), *op.spec.get("parameters", [])]
        params = [self._deref(p, "")[0] for p in params]
        for index, param in enumerate(op.spec.get("parameters", [])):
            if self._deref(param, "")[0].get("in") == "body":
                ptr = _pointer("paths", op.template, op.method, "parameters", str(index), "schema")
                if body is None:
                    return [f"{label}: request body is required"] if param.get("required") else []
                return self._check(ptr, body, label)
        form = [p for p in params if p.get("in") == "formData"]
        if not form or body is None:
            return []
        missing = [p["name"] for p in form if p.get("required") and p["name"] not in body]
        return [f"{label}: missing required form field {name!r}" for name in missing]

    def _response_schema_pointer(self, op: Operation, status: int, content_type: str) -> str | None:
        responses = op.spec.get("responses", {})
        key = next(
            (k for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses), None
        )
        if key is None:
            return None
        response, ptr = self._deref(
            responses[key], _pointer("paths", op.template, op.method, "responses", key)
        )
        if self.swagger2:
            return _join(ptr, "schema") if "schema" in response else None
        content = response.get("content")
        if not content:
            return None
        if content_type not in content:
            return f"!content type {content_type} not documented for {key} ({', '.join(content)})"
        if "schema" not in content[content_type]:
            return None
        return _join(ptr, "content", content_type, "schema")

    def _deref(self, node: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
        """Follow OpenAPI-level ``$ref``s (responses, requestBodies, parameters)."""
        for _ in range(20):
            ref = node.get("$ref") if isinstance(node, dict) else None
            if not (isinstance(ref, str) and ref.startswith("#/")):
                break
            pointer = ref[1:]
            node = _resolve_pointer(self.document, pointer)
        return node, pointer

    def _check(self, pointer: str, instance: Any, label: str) -> list[str]:
        tagged = self._tag_map(pointer)
        if tagged is not None:
            prop, branches = tagged
            tag = instance.get(prop) if isinstance(instance, dict) else None
            if tag not in branches:
                return [f"{label}: $.{prop}: {tag!r} is not one of the {len(branches)} known kinds"]
            pointer = branches[tag]
        validator = self._validators.get(pointer)
        if validator is None:
            validator = Draft202012Validator(
                {"$ref": f"{_URI}#{quote(pointer, safe='/~')}"}, registry=self._registry
            )
            self._validators[pointer] = validator
        problems: list[str] = []
        for error in validator.iter_errors(instance):
            for leaf in _explain(error):
                message = leaf.message
                if len(message) > _MAX_MESSAGE:
                    message = message[: _MAX_MESSAGE - 3] + "..."
                problems.append(f"{label}: {leaf.json_path}: {message}")
                if len(problems) >= _MAX_PROBLEMS:
                    return problems
        return problems

    def _tag_map(self, pointer: str) -> tuple[str, dict[str, str]] | None:
        """For a schema that is a tagged union: (tag property, tag -> branch pointer)."""
        if pointer in self._tag_maps:
            return self._tag_maps[pointer]
        result = None
        schema, ptr = self._deref(_resolve_pointer(self.document, pointer), pointer)
        if "anyOf" in schema and set(schema) <= _UNION_ONLY:
            prop = (schema.get("discriminator") or {}).get("propertyName", "type")
            branches: dict[str, str] = {}
            for i, alternative in enumerate(schema["anyOf"]):
                branch, bptr = self._deref(alternative, _join(ptr, "anyOf", str(i)))
                tags = _const_values(_get(branch, ("properties", prop), None))
                if not tags:
                    branches = {}
                    break
                for tag in tags:
                    branches.setdefault(tag, bptr)
            if branches:
                result = (prop, branches)
        self._tag_maps[pointer] = result
        return result


# -- error explanation ------------------------------------------------------------------------


def _explain(error: ValidationError, depth: int = 0) -> list[ValidationError]:
    """Replace an anyOf failure by the errors of the alternative that was meant.

    Alternatives that fail on the tag property (``type`` or the discriminator), on the JSON
    type, or lack a required tag are another kind of value; of the rest, the one whose errors
    reach deepest into the value is taken as meant. If every alternative fails on the tag,
    the tag itself is reported with the allowed values.
    """
    if error.validator not in ("anyOf", "oneOf") or not error.context or depth > 30:
        return [error]
    schema = error.schema if isinstance(error.schema, dict) else {}
    tag = (schema.get("discriminator") or {}).get("propertyName", "type")
    branches = _alternatives(error)
    meant = [errs for errs in branches if not any(_is_mismatch(e, tag) for e in errs)]
    if meant:
        # deepest reach first, then fewest errors, then the spec's order
        chosen = min(meant, key=lambda errs: (-max(_reach(e) for e in errs), len(errs)))
        return [leaf for e in chosen for leaf in _explain(e, depth + 1)]
    if isinstance(error.instance, dict) and tag in error.instance:
        allowed = sorted({str(v) for errs in branches for e in errs for v in _allowed_tags(e, tag)})
        if allowed:
            tag_error = ValidationError(
                f"{error.instance[tag]!r} is not one of the {len(allowed)} known kinds "
                f"({', '.join(allowed[:12])}{', ...' if len(allowed) > 12 else ''})",
                validator="enum",
                path=[tag],
                instance=error.instance[tag],
                parent=error,
            )
            return [tag_error]
    best = best_match(error.context)
    return [error] if best is None else [best]


def _alternatives(error: ValidationError, depth: int = 0) -> list[list[ValidationError]]:
    """The errors of each alternative of a union error, nested unions at the same spot flattened."""
    by_branch: dict[Any, list[ValidationError]] = {}
    for sub in error.context or ():
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    out: list[list[ValidationError]] = []
    for errs in by_branch.values():
        only = errs[0]
        if (
            len(errs) == 1
            and only.validator in ("anyOf", "oneOf")
            and not only.relative_path
            and only.context
            and depth < 10
        ):
            out += _alternatives(only, depth + 1)
        else:
            out.append(errs)
    return out


def _is_mismatch(error: ValidationError, tag: str) -> bool:
    """True if this error shows the alternative is another kind of value altogether."""
    if not error.relative_path:
        if error.validator == "type":
            return True
        if error.validator == "required":  # the tag itself is missing
            return error.message == f"{tag!r} is a required property"
        return False
    return len(error.relative_path) == 1 and error.relative_path[0] == tag


def _reach(error: ValidationError, depth: int = 0) -> int:
    """How deep into the value an error (or the deepest of its sub-errors) points."""
    deeper = (
        max((_reach(c, depth + 1) for c in error.context or ()), default=0) if depth < 30 else 0
    )
    return len(error.relative_path) + deeper


def _allowed_tags(error: ValidationError, tag: str) -> list[Any]:
    """The tag values an alternative would have accepted (from its enum/const errors)."""
    if list(error.relative_path) != [tag]:
        return []
    if error.validator == "enum":
        return list(error.validator_value)
    if error.validator == "const":
        return [error.validator_value]
    found: list[Any] = []
    for sub in error.context or ():
        if not sub.relative_path and sub.validator in ("enum", "const"):
            found += sub.validator_value if sub.validator == "enum" else [sub.validator_value]
    return found


# -- document normalisation -------------------------------------------------------------------


def _normalise_document(node: Any, key: str | None = None) -> Any:
    """Copy the document, normalising every schema found in it (see module docstring)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("example", "examples") or k.startswith("x-"):
                out[k] = v
            elif k == "schema":
                out[k] = _normalise_schema(v)
            elif k in ("schemas", "definitions") and isinstance(v, dict):
                out[k] = {name: _normalise_schema(s) for name, s in v.items()}
            else:
                out[k] = _normalise_document(v, k)
        return out
    if isinstance(node, list):
        return [_normalise_document(v, key) for v in node]
    return node


def _normalise_schema(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    nullable = False
    one_of = None
    for k, v in schema.items():
        if k in ("nullable", "x-nullable"):
            nullable = v is True
        elif k.startswith("x-"):
            continue
        elif k in _SCHEMA_MAPS and isinstance(v, dict):
            out[k] = {name: _normalise_schema(s) for name, s in v.items()}
        elif k == "oneOf" and isinstance(v, list):
            one_of = [_normalise_schema(s) for s in v]
        elif k in _SCHEMA_LISTS and isinstance(v, list):
            out[k] = [_normalise_schema(s) for s in v]
        elif k == "items" and isinstance(v, list):  # draft-4 tuple form
            out["prefixItems"] = [_normalise_schema(s) for s in v]
        elif k in _SCHEMA_ONE:
            out[k] = _normalise_schema(v)
        else:
            out[k] = v
    if one_of is not None:
        if "anyOf" in out:  # both present: keep both constraints
            out["allOf"] = [*out.get("allOf", []), {"anyOf": one_of}]
        else:
            out["anyOf"] = one_of
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(out.get(exclusive), bool) and out.pop(exclusive) and bound in out:
            out[exclusive] = out.pop(bound)
    if out.get("type") == "file":
        del out["type"]
    if nullable:
        return {"anyOf": [out, {"type": "null"}]}
    return out


# -- small helpers ----------------------------------------------------------------------------


def _const_values(prop_schema: Any) -> list[Any]:
    if not isinstance(prop_schema, dict):
        return []
    if "const" in prop_schema:
        return [prop_schema["const"]]
    enum = prop_schema.get("enum")
    return list(enum) if isinstance(enum, list) and len(enum) == 1 else []


def _get(node: Any, keys: Iterable[str], default: Any) -> Any:
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return default
        node = node[k]
    return node


def _pointer(*segments: str) -> str:
    return "".join("/" + s.replace("~", "~0").replace("/", "~1") for s in segments)


def _join(pointer: str, *segments: str) -> str:
    return pointer + _pointer(*segments)


def _resolve_pointer(document: Any, pointer: str) -> Any:
    node = document
    for raw in pointer.split("/")[1:]:
        segment = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(segment)] if isinstance(node, list) else node[segment]
    return node
