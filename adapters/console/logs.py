"""Log lines in the console: never inside an answer, never a second copy of an error.

In a terminal, stdout (answers) and stderr (logs) are the same screen, so a log line written
while an answer streams lands in the middle of it. `LogGate` replaces the root handlers with
ones that hold records while a message is being answered and write them once it is (before
the next prompt), in order. Records the user has already been shown as the answer (they carry
`told_user`, set where an error becomes the reply) are dropped: the console shows each error
once, as the answer (with `LOG_LEVEL=DEBUG` they are kept, with their technical detail).
"""

from __future__ import annotations

import logging
import threading

TOLD_USER = "told_user"


class _Held(logging.Handler):
    """Wraps one handler: passes records through, or keeps them while the gate is closed."""

    def __init__(self, inner: logging.Handler, gate: LogGate) -> None:
        super().__init__(inner.level)
        self.inner = inner
        self._gate = gate

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, TOLD_USER, False) and logging.getLogger().level > logging.DEBUG:
            return
        # The inner handler's filters run now (redaction, and the log context of the moment),
        # its output later if the gate is closed.
        if not self.inner.filter(record):
            return
        if not self._gate.keep(self, record):
            self.write(record)

    def write(self, record: logging.LogRecord) -> None:
        self.inner.acquire()
        try:
            self.inner.emit(record)
        finally:
            self.inner.release()

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()
        super().close()


class LogGate:
    """`hold()` while a message is answered, `release()` after (writes what was held)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holding = False
        self._held: list[tuple[_Held, logging.LogRecord]] = []
        self._installed: list[_Held] = []

    def install(self, logger: logging.Logger | None = None) -> LogGate:
        target = logger or logging.getLogger()
        wrapped = []
        for handler in target.handlers:
            held = handler if isinstance(handler, _Held) else _Held(handler, self)
            wrapped.append(held)
        target.handlers[:] = wrapped
        self._installed = [h for h in wrapped if isinstance(h, _Held)]
        return self

    def uninstall(self, logger: logging.Logger | None = None) -> None:
        self.release()
        target = logger or logging.getLogger()
        target.handlers[:] = [h.inner if isinstance(h, _Held) else h for h in target.handlers]

    def keep(self, handler: _Held, record: logging.LogRecord) -> bool:
        with self._lock:
            if self._holding:
                self._held.append((handler, record))
            return self._holding

    def hold(self) -> None:
        with self._lock:
            self._holding = True

    def release(self) -> None:
        with self._lock:
            self._holding = False
            held, self._held = self._held, []
        for handler, record in held:
            handler.write(record)
