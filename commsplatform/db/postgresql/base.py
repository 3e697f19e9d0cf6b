"""Django's PostgreSQL backend, with statements that travel with the next one.

`defer(sql, params, on_rows)` queues a statement of the current transaction whose result
nobody needs before the transaction goes on: it is sent just before the next statement
on the connection, or, when the next thing is the COMMIT, in the COMMIT's round trip
(one query `<statement>; COMMIT`, its parameters bound as literals). Either
way the database runs it in its place, after what came before it and before anything
after it, so the transaction sees what it would have seen had the statement run at once;
a savepoint rolled back, or the transaction, takes it back as it would have. `on_rows`
gets the statement's rows once it ran. "The next statement" is the next one through
Django's cursors (an execute wrapper sends the deferred ones first); a raw psycopg call
such as `cursor.copy()` bypasses the wrappers, and runs before them.

workers.publish defers the outbox INSERT of `publish_on_commit`: a write that publishes
then costs the database round trips of the same write without the event.

Settings use this backend for every `postgres://` DATABASE_URL (components/core.py).
"""

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from django.db.backends.utils import debug_transaction  # type: ignore[attr-defined]  # not in django-stubs

OnRows = Callable[[list[tuple[Any, ...]]], None]


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[tuple[str, Sequence[Any], OnRows]] = []
        self._client_cursor: psycopg.ClientCursor[Any] | None = None  # binds literals, never executes

    def defer(self, sql: str, params: Sequence[Any], on_rows: OnRows) -> None:
        """Run `sql` before the next statement of this transaction or with its COMMIT."""
        if not self.in_atomic_block:
            raise RuntimeError("defer() is for statements inside a transaction (atomic block)")
        if not self._deferred:
            # First in the list, so the outermost wrapper; and never the last, which is the
            # one Django's execute_wrapper() context manager pops as it exits.
            self.execute_wrappers.insert(0, self._run_deferred_first)
        self._deferred.append((sql, params, on_rows))

    def _run_deferred_first(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        """An execute wrapper, installed while statements wait: they go first."""
        self.run_deferred()
        return execute(sql, params, many, context)

    def run_deferred(self) -> None:
        """Send the statements waiting, now, one round trip each."""
        deferred = self._take_deferred()
        if deferred:
            with self.cursor() as cursor:  # Django's: debug logging and execute wrappers see it
                for sql, params, on_rows in deferred:
                    cursor.execute(sql, params)
                    on_rows(cursor.fetchall())

    def _take_deferred(self) -> list[tuple[str, Sequence[Any], OnRows]]:
        deferred, self._deferred = self._deferred, []
        if deferred:
            self.execute_wrappers.remove(self._run_deferred_first)
        return deferred

    def _forget_deferred(self) -> None:
        self._take_deferred()

    def _commit(self) -> None:
        if not self._deferred or self.connection is None:
            return super()._commit()  # type: ignore[misc]  # django-stubs omit the _commit/_rollback/_close hooks
        deferred = self._take_deferred()
        # One simple-protocol query, `<statement>; …; COMMIT`, the parameters bound as
        # literals by psycopg's client-side binding (Django's own default for psycopg):
        # one message, one round trip. A statement that fails ends the query there, the
        # COMMIT never runs and the error is raised here; Django's atomic then rolls back.
        script = "; ".join([*(self._mogrify(sql, params) for sql, params, _ in deferred), "COMMIT"])
        results = []
        with self.cursor() as cursor, debug_transaction(self, "COMMIT"), self.wrap_database_errors:
            cursor.execute(script)
            for _ in deferred:
                results.append(cursor.fetchall())
                cursor.nextset()
        for (_, _, on_rows), rows in zip(deferred, results, strict=True):
            on_rows(rows)
        return None

    def _mogrify(self, sql: str, params: Sequence[Any]) -> str:
        if self._client_cursor is None or self._client_cursor.connection is not self.connection:
            self._client_cursor = psycopg.ClientCursor(self.connection)
        return self._client_cursor.mogrify(sql, params)

    def _rollback(self) -> None:
        self._forget_deferred()
        return super()._rollback()  # type: ignore[misc]

    def _close(self) -> None:
        self._forget_deferred()
        return super()._close()  # type: ignore[misc]
