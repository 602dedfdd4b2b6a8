"""The check of pooled connections: a connection whose server session ended is replaced
before use; a live one is handed out as it is."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from gridmap.store.db import check_pooled, libpq_dsn


def test_a_connection_whose_session_ended_is_refused_and_the_pool_takes_another(
        db_url: str) -> None:
    async def scenario() -> tuple[int, int, int]:
        pool = AsyncConnectionPool(libpq_dsn(db_url), min_size=1, max_size=1, open=False,
                                   kwargs={"autocommit": True}, check=check_pooled)
        await pool.open(wait=True)
        try:
            async with pool.connection() as conn:
                first = conn.info.backend_pid
                await check_pooled(conn)  # alive: passes
            async with pool.connection() as conn:
                again = conn.info.backend_pid
            with psycopg.connect(libpq_dsn(db_url), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (first,))
                async with await psycopg.AsyncConnection.connect(
                        libpq_dsn(db_url), autocommit=True) as probe:
                    admin.execute("SELECT pg_terminate_backend(%s)",
                                  (probe.info.backend_pid,))
                    await asyncio.sleep(0.2)  # the server's last message reaches the socket
                    with pytest.raises(psycopg.OperationalError):
                        await check_pooled(probe)
            async with pool.connection() as conn:  # the ended one is replaced, not handed out
                cur = await conn.execute("SELECT pg_backend_pid()")
                row = await cur.fetchone()
                assert row is not None
                return first, again, int(row[0])
        finally:
            await pool.close()

    first, again, third = asyncio.run(scenario())
    assert again == first  # a live connection is reused
    assert third != first
