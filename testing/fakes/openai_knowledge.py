"""Files and vector stores for `FakeOpenAI` (registered by its ``start``; state on
``fake.knowledge``), answered in the shapes of the OpenAI spec (the fake's spec check covers
these routes too).

Modelled:

* ``POST /v1/files`` (multipart ``file`` + ``purpose`` from the spec's enum, else 400),
  ``GET``/``DELETE /v1/files/{id}`` (404 for an unknown id). Uploaded bytes are kept in
  `FakeKnowledge.file_data`.
* ``POST /v1/vector_stores`` (``name``, ``metadata``, ``file_ids``), ``GET``/``DELETE
  /v1/vector_stores/{id}``.
* ``POST /v1/vector_stores/{id}/files`` (``file_id`` must name an uploaded file, else 404),
  ``GET .../files`` (list, ``has_more`` false), ``GET``/``DELETE .../files/{file_id}``. A file
  starts ``in_progress`` and is done after `FakeKnowledge.polls_to_complete` retrievals:
  ``completed``, or ``failed`` with ``last_error`` when `FakeKnowledge.fail` returns
  ``(code, message)`` for its filename (code: ``server_error``, ``unsupported_file`` or
  ``invalid_file``). `FakeKnowledge.stuck` filenames never finish.

NOT modelled: chunking (strategies are accepted and ignored), ``usage_bytes`` (the file size),
search (``/vector_stores/{id}/search``), file batches, attributes, expiry, pagination cursors,
``/files`` list and content download, purposes' own rules (e.g. file types per purpose), and
the processing of file contents (any bytes "process" successfully unless scripted to fail).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .openai_fake import FakeOpenAI

PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})


class FakeKnowledge:
    def __init__(self, fake: FakeOpenAI, body_of: Callable[[web.Request], Any]) -> None:
        self._fake = fake
        self._body_of = body_of
        self.files: dict[str, dict[str, Any]] = {}
        self.file_data: dict[str, bytes] = {}
        self.stores: dict[str, dict[str, Any]] = {}
        self.store_files: dict[str, dict[str, dict[str, Any]]] = {}
        self.polls_to_complete = 1
        self.fail: Callable[[str], tuple[str, str] | None] = lambda filename: None
        self.stuck: set[str] = set()
        self._polls: dict[tuple[str, str], int] = {}

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/files", self._file_create)
        router.add_get("/v1/files/{id}", self._file_get)
        router.add_delete("/v1/files/{id}", self._file_delete)
        router.add_post("/v1/vector_stores", self._store_create)
        router.add_get("/v1/vector_stores/{id}", self._store_get)
        router.add_delete("/v1/vector_stores/{id}", self._store_delete)
        router.add_post("/v1/vector_stores/{id}/files", self._store_file_create)
        router.add_get("/v1/vector_stores/{id}/files", self._store_file_list)
        router.add_get("/v1/vector_stores/{id}/files/{file_id}", self._store_file_get)
        router.add_delete("/v1/vector_stores/{id}/files/{file_id}", self._store_file_delete)

    # -- files -----------------------------------------------------------------------------------

    async def _file_create(self, request: web.Request) -> web.Response:
        body = self._body_of(request)
        form = body if isinstance(body, dict) else {}
        upload = form.get("file")
        purpose = form.get("purpose")
        if not isinstance(upload, dict):
            return self._bad(request, "Missing required parameter: 'file'.", "file")
        if purpose not in PURPOSES:
            return self._bad(request, f"Invalid value for 'purpose': {purpose!r}.", "purpose")
        file_id = "file-" + secrets.token_hex(12)
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": upload["size"],
            "created_at": int(time.time()),
            "filename": upload["filename"],
            "purpose": purpose,
            "status": "processed",
        }
        self.file_data[file_id] = upload["data"]
        return self._fake._json(request, self.files[file_id])

    async def _file_get(self, request: web.Request) -> web.Response:
        file = self.files.get(request.match_info["id"])
        if file is None:
            return self._no_file(request, request.match_info["id"])
        return self._fake._json(request, file)

    async def _file_delete(self, request: web.Request) -> web.Response:
        file_id = request.match_info["id"]
        if self.files.pop(file_id, None) is None:
            return self._no_file(request, file_id)
        self.file_data.pop(file_id, None)
        return self._fake._json(request, {"id": file_id, "object": "file", "deleted": True})

    # -- vector stores -----------------------------------------------------------------------------

    async def _store_create(self, request: web.Request) -> web.Response:
        body = self._body_of(request)
        body = body if isinstance(body, dict) else {}
        store_id = "vs_" + secrets.token_hex(12)
        now = int(time.time())
        self.stores[store_id] = {
            "id": store_id,
            "object": "vector_store",
            "created_at": now,
            "name": str(body.get("name", "")),
            "usage_bytes": 0,
            "status": "completed",
            "last_active_at": now,
            "expires_at": None,
            "metadata": body.get("metadata") or {},
        }
        self.store_files[store_id] = {}
        for file_id in body.get("file_ids") or ():
            if file_id in self.files:
                self._attach(store_id, file_id)
        return self._fake._json(request, self._store(store_id))

    async def _store_get(self, request: web.Request) -> web.Response:
        store_id = request.match_info["id"]
        if store_id not in self.stores:
            return self._no_store(request, store_id)
        return self._fake._json(request, self._store(store_id))

    async def _store_delete(self, request: web.Request) -> web.Response:
        store_id = request.match_info["id"]
        if self.stores.pop(store_id, None) is None:
            return self._no_store(request, store_id)
        self.store_files.pop(store_id, None)
        payload = {"id": store_id, "object": "vector_store.deleted", "deleted": True}
        return self._fake._json(request, payload)

    def _store(self, store_id: str) -> dict[str, Any]:
        files = list(self.store_files[store_id].values())
        counts = {
            status: sum(f["status"] == status for f in files)
            for status in ("in_progress", "completed", "failed", "cancelled")
        }
        return {
            **self.stores[store_id],
            "usage_bytes": sum(f["usage_bytes"] for f in files),
            "file_counts": {**counts, "total": len(files)},
        }

    # -- vector store files ------------------------------------------------------------------------

    async def _store_file_create(self, request: web.Request) -> web.Response:
        store_id = request.match_info["id"]
        if store_id not in self.stores:
            return self._no_store(request, store_id)
        body = self._body_of(request)
        file_id = body.get("file_id") if isinstance(body, dict) else None
        if not isinstance(file_id, str) or file_id not in self.files:
            return self._no_file(request, str(file_id))
        return self._fake._json(request, self._attach(store_id, file_id))

    def _attach(self, store_id: str, file_id: str) -> dict[str, Any]:
        entry = {
            "id": file_id,
            "object": "vector_store.file",
            "usage_bytes": self.files[file_id]["bytes"],
            "created_at": int(time.time()),
            "vector_store_id": store_id,
            "status": "in_progress",
            "last_error": None,
        }
        self.store_files[store_id][file_id] = entry
        self._polls[(store_id, file_id)] = 0
        return entry

    async def _store_file_list(self, request: web.Request) -> web.Response:
        store_id = request.match_info["id"]
        if store_id not in self.stores:
            return self._no_store(request, store_id)
        data = list(self.store_files[store_id].values())
        payload = {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else "",
            "last_id": data[-1]["id"] if data else "",
            "has_more": False,
        }
        return self._fake._json(request, payload)

    async def _store_file_get(self, request: web.Request) -> web.Response:
        store_id, file_id = request.match_info["id"], request.match_info["file_id"]
        entry = self.store_files.get(store_id, {}).get(file_id)
        if entry is None:
            return self._no_file(request, file_id)
        if entry["status"] == "in_progress":
            self._progress(store_id, entry)
        return self._fake._json(request, entry)

    def _progress(self, store_id: str, entry: dict[str, Any]) -> None:
        key = (store_id, entry["id"])
        self._polls[key] = self._polls.get(key, 0) + 1
        filename = self.files.get(entry["id"], {}).get("filename", "")
        if filename in self.stuck or self._polls[key] < self.polls_to_complete:
            return
        failure = self.fail(filename)
        if failure is None:
            entry["status"] = "completed"
        else:
            code, message = failure
            entry["status"] = "failed"
            entry["last_error"] = {"code": code, "message": message}

    async def _store_file_delete(self, request: web.Request) -> web.Response:
        store_id, file_id = request.match_info["id"], request.match_info["file_id"]
        if self.store_files.get(store_id, {}).pop(file_id, None) is None:
            return self._no_file(request, file_id)
        payload = {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}
        return self._fake._json(request, payload)

    # -- errors ------------------------------------------------------------------------------------

    def _bad(self, request: web.Request, message: str, param: str) -> web.Response:
        return self._fake._error(request, 400, message, "invalid_request_error", param=param)

    def _no_file(self, request: web.Request, file_id: str) -> web.Response:
        message = f"No such File object: {file_id}"
        return self._fake._error(request, 404, message, "invalid_request_error", param="id")

    def _no_store(self, request: web.Request, store_id: str) -> web.Response:
        message = f"No vector store found with id '{store_id}'."
        return self._fake._error(request, 404, message, "invalid_request_error")
