"""Containers for the OpenAI fake (code interpreter): create / retrieve / delete, container
files upload (multipart or ``file_id``) / list / retrieve / content. Mixed into `FakeOpenAI`.

`FakeOpenAI.expire_container(id)` makes a container ``expired`` (as after 20 idle minutes):
retrieve still answers, with ``status: "expired"``; a response naming it gets 400
``container_expired``; its files are gone. NOT modelled: ``memory_limit`` effects, network
policies, skills, list pagination cursors (``after``), file deletion.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

BODY = web.RequestKey("body", object)  # the parsed request body, set by the fake's middleware


class ContainersMixin:
    containers: dict[str, dict[str, Any]]
    container_files: dict[str, dict[str, dict[str, Any]]]  # container -> file id -> record

    def _init_containers(self) -> None:
        self.containers = {}
        self.container_files = {}

    def _add_container_routes(self, r: web.UrlDispatcher) -> None:
        r.add_post("/v1/containers", self._container_create)
        r.add_get("/v1/containers/{id}", self._container_get)
        r.add_delete("/v1/containers/{id}", self._container_delete)
        r.add_post("/v1/containers/{id}/files", self._container_file_create)
        r.add_get("/v1/containers/{id}/files", self._container_files_list)
        r.add_get("/v1/containers/{id}/files/{file}", self._container_file_get)
        r.add_get("/v1/containers/{id}/files/{file}/content", self._container_file_content)

    # -- helpers used by the Responses handler ---------------------------------------------------

    def expire_container(self, container_id: str) -> None:
        self.containers[container_id]["status"] = "expired"
        self.container_files[container_id] = {}

    def container_problem(self, container_id: Any) -> str | None:
        """Why a response cannot run code in `container_id` (None when it can)."""
        if not isinstance(container_id, str) or container_id not in self.containers:
            return f"Container with id '{container_id}' not found."
        if self.containers[container_id]["status"] == "expired":
            return f"Container '{container_id}' is expired."
        return None

    def add_container_file(
        self, container_id: str, name: str, data: bytes, source: str = "assistant"
    ) -> dict[str, Any]:
        file_id = "cfile_" + secrets.token_hex(16)
        meta = {
            "id": file_id,
            "object": "container.file",
            "created_at": int(time.time()),
            "bytes": len(data),
            "container_id": container_id,
            "path": f"/mnt/data/{name}",
            "source": source,
        }
        self.container_files[container_id][file_id] = {"meta": meta, "data": data}
        self.containers[container_id]["last_active_at"] = int(time.time())
        return meta

    # -- handlers -------------------------------------------------------------------------------

    def _container_404(self, request: web.Request, container_id: str) -> web.Response:
        message = f"Container with id '{container_id}' not found."
        return self._error(request, 404, message, "invalid_request_error")  # type: ignore[attr-defined]

    async def _container_create(self, request: web.Request) -> web.Response:
        body = request[BODY] or {}
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            return self._error(  # type: ignore[attr-defined]
                request, 400, "Missing required parameter: 'name'.", "invalid_request_error",
                param="name", code="missing_required_parameter",
            )  # fmt: skip
        now = int(time.time())
        container_id = "cntr_" + secrets.token_hex(24)
        expires = body.get("expires_after") or {"anchor": "last_active_at", "minutes": 20}
        self.containers[container_id] = {
            "id": container_id,
            "object": "container",
            "name": body["name"],
            "created_at": now,
            "status": "running",
            "last_active_at": now,
            "expires_after": expires,
            "memory_limit": body.get("memory_limit", "1g"),
        }
        self.container_files[container_id] = {}
        return self._json(request, self.containers[container_id])  # type: ignore[attr-defined]

    async def _container_get(self, request: web.Request) -> web.Response:
        container_id = request.match_info["id"]
        if container_id not in self.containers:
            return self._container_404(request, container_id)
        return self._json(request, self.containers[container_id])  # type: ignore[attr-defined]

    async def _container_delete(self, request: web.Request) -> web.Response:
        container_id = request.match_info["id"]
        if self.containers.pop(container_id, None) is None:
            return self._container_404(request, container_id)
        self.container_files.pop(container_id, None)
        payload = {"id": container_id, "object": "container.deleted", "deleted": True}
        return self._json(request, payload)  # type: ignore[attr-defined]

    def _live(self, request: web.Request) -> tuple[str, web.Response | None]:
        container_id = request.match_info["id"]
        if container_id not in self.containers:
            return container_id, self._container_404(request, container_id)
        if self.containers[container_id]["status"] == "expired":
            message = f"Container '{container_id}' is expired."
            error = self._error(  # type: ignore[attr-defined]
                request, 400, message, "invalid_request_error", code="container_expired"
            )
            return container_id, error
        return container_id, None

    async def _container_file_create(self, request: web.Request) -> web.Response:
        container_id, error = self._live(request)
        if error is not None:
            return error
        body = request[BODY] or {}
        upload = body.get("file") if isinstance(body, dict) else None
        if isinstance(upload, dict) and "data" in upload:
            meta = self.add_container_file(container_id, upload["filename"], upload["data"], "user")
        else:
            return self._error(  # type: ignore[attr-defined]
                request, 400, "A 'file' upload is required.", "invalid_request_error", param="file"
            )
        return self._json(request, meta)  # type: ignore[attr-defined]

    async def _container_files_list(self, request: web.Request) -> web.Response:
        container_id, error = self._live(request)
        if error is not None:
            return error
        data = [record["meta"] for record in self.container_files[container_id].values()]
        if request.query.get("order", "desc") == "desc":
            data = data[::-1]
        limit = int(request.query.get("limit", "20"))
        page = data[:limit]
        payload = {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(data) > limit,
        }
        return self._json(request, payload)  # type: ignore[attr-defined]

    def _file(self, request: web.Request) -> dict[str, Any] | web.Response:
        container_id, error = self._live(request)
        if error is not None:
            return error
        record = self.container_files[container_id].get(request.match_info["file"])
        if record is None:
            message = f"File with id '{request.match_info['file']}' not found."
            return self._error(request, 404, message, "invalid_request_error")  # type: ignore[attr-defined]
        return record

    async def _container_file_get(self, request: web.Request) -> web.Response:
        found = self._file(request)
        if isinstance(found, web.Response):
            return found
        return self._json(request, found["meta"])  # type: ignore[attr-defined]

    async def _container_file_content(self, request: web.Request) -> web.Response:
        found = self._file(request)
        if isinstance(found, web.Response):
            return found
        return web.Response(body=found["data"], content_type="application/octet-stream")
