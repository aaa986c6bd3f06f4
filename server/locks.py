"""Serialising the writers that count before they insert: a row lock on Postgres, the write lock on SQLite."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session


def lock_row(session: Session, model, row_id: int) -> None:
    """Hold row `row_id` of `model` until this transaction ends, so the counts read after it stay true.

    Postgres: SELECT ... FOR NO KEY UPDATE (a second writer for the same row waits; READ COMMITTED then
    lets its next statement see the first one's rows; rows that only reference this one, such as a
    worker's Score, are not held up). SQLite: BEGIN IMMEDIATE, the database's single write
    lock, taken before the first read of the transaction (pysqlite opens none for plain SELECTs), or
    already held when the transaction has written.
    """
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        raw = conn.connection.driver_connection
        if not raw.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        return
    session.execute(select(model.id).where(model.id == row_id).with_for_update(key_share=True))
