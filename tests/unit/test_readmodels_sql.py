"""The read-model tables the store addresses: the catalogue's, or the rebuild's copies of them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from db.tables import READ_MODELS
from streams.readmodels.sql import LIVE, NEXT, read_model_tables


def _ddl(table: sa.Table) -> list[str]:
    made = [CreateTable(table), *(CreateIndex(index) for index in table.indexes)]
    return [str(item.compile(dialect=postgresql.dialect())).strip() for item in made]


def test_the_live_tables_are_the_catalogues() -> None:
    assert tuple(read_model_tables(LIVE)) == READ_MODELS


@pytest.mark.parametrize("index", range(len(READ_MODELS)), ids=[t.name for t in READ_MODELS])
def test_a_shadow_table_is_its_live_table_with_next_names(index: int) -> None:
    live, shadow = READ_MODELS[index], read_model_tables(NEXT)[index]
    assert shadow.name == f"{live.name}{NEXT}"
    # Two tables in one schema cannot share a key's or an index's name.
    assert shadow.primary_key.name == f"{shadow.name}_pkey"
    assert all(str(i.name).startswith(f"{shadow.name}_") for i in shadow.indexes)
    unsuffixed = [line.replace(shadow.name, live.name) for line in _ddl(shadow)]
    assert unsuffixed == _ddl(live)


def test_there_are_no_other_read_model_tables() -> None:
    with pytest.raises(ValueError, match="no read-model tables"):
        read_model_tables("_old")
