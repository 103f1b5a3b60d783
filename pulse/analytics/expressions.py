"""SQL expressions that SQLite and PostgreSQL spell differently.

- `PropText(props, key)`: a JSON property as text, the same text on both
  (`true`, `42`, `plan-a`; NULL when absent or null).
- `EpochSeconds(ts)`: whole seconds since 1970 of a UTC timestamp.
- `BinaryOrder(expr)`: sort by code point (PostgreSQL's default collation is not),
  so ties break the same way on both and in Python.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, String, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class PropText(ColumnElement[str]):
    """`props ->> key` with SQLite's JSON functions made to answer the same text."""

    type = String()
    inherit_cache = False

    def __init__(self, column: ColumnElement[Any], key: str) -> None:
        if '"' in key:
            raise ValueError("property names with a double quote cannot be queried")
        self.column = column
        self.key = key


@compiles(PropText)
def _prop_text_default(element: PropText, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    key = compiler.process(bindparam(None, element.key, String()), **kw)
    return f"({column} ->> {key})"


@compiles(PropText, "sqlite")
def _prop_text_sqlite(element: PropText, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)

    def path() -> str:
        return compiler.process(bindparam(None, f'$."{element.key}"', String()), **kw)

    return (
        f"(CASE json_type({column}, {path()}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
        f"WHEN 'null' THEN NULL ELSE CAST(json_extract({column}, {path()}) AS TEXT) END)"
    )


class EpochSeconds(FunctionElement[int]):
    """Whole seconds since the epoch, floored."""

    type = BigInteger()
    name = "epoch_seconds"
    inherit_cache = True


@compiles(EpochSeconds)
def _epoch_default(element: EpochSeconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


@compiles(EpochSeconds, "sqlite")
def _epoch_sqlite(element: EpochSeconds, compiler: Any, **kw: Any) -> str:
    # Whole seconds of the text only: SQLite rounds a fraction to milliseconds, which
    # would carry 23:59:59.9999995 over into the next day.
    ts = compiler.process(element.clauses, **kw)
    return f"CAST(strftime('%s', substr({ts}, 1, 19)) AS INTEGER)"


class BinaryOrder(FunctionElement[str]):
    """An expression to ORDER BY in code-point order."""

    type = String()
    name = "binary_order"
    inherit_cache = True


@compiles(BinaryOrder)
def _binary_default(element: BinaryOrder, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(BinaryOrder, "postgresql")
def _binary_postgresql(element: BinaryOrder, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


class DayNumber(FunctionElement[int]):
    """Days since 1970-01-01 of a DATE column (the roll-ups' day), as an integer."""

    type = BigInteger()
    name = "day_number"
    inherit_cache = True


@compiles(DayNumber)
def _day_number_default(element: DayNumber, compiler: Any, **kw: Any) -> str:
    return f"CAST(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5 AS INTEGER)"


@compiles(DayNumber, "postgresql")
def _day_number_postgresql(element: DayNumber, compiler: Any, **kw: Any) -> str:
    return f"(({compiler.process(element.clauses, **kw)}) - DATE '1970-01-01')"
