"""Catalog columns that real catalogs hold: strings, units, masks, Time, Quantity."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from astropy import units as u
from astropy.table import MaskedColumn, QTable, Table
from astropy.time import Time
from astropy.utils.masked import Masked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compstore import Butler, SourceCatalog
from compstore.errors import EncodingError


@pytest.fixture
def cat_butler(repo):
    b = Butler(repo, run="r")
    b.register_dataset_type("src", ("visit",), "SourceCatalog")
    return b


def _round_trip(butler, table, visit=1):
    butler.put(SourceCatalog(table), "src", visit=visit)
    return butler.get("src", visit=visit).table


def test_fixed_width_strings_bytes_and_units(cat_butler):
    table = Table({
        "id": np.array([1, 2, 3], dtype=np.int64),
        "band": np.array(["g", "r", "i_long"]),
        "raw": np.array([b"ab", b"c", b""]),
        "flux": [1.0, 2.0, 3.0],
    })
    table["flux"].unit = u.nJy
    table["band"].description = "filter band"
    back = _round_trip(cat_butler, table)
    assert back["band"].dtype == table["band"].dtype
    assert list(back["band"]) == ["g", "r", "i_long"]
    assert back["raw"].dtype == np.dtype("S2")
    assert back["raw"].data.tolist() == [b"ab", b"c", b""]
    assert back["flux"].unit == u.nJy and back["band"].description == "filter band"


def test_variable_width_unicode(cat_butler):
    values = np.array(["é", "", "a much longer string ✓", "x"], dtype=object)
    back = _round_trip(cat_butler, Table({"name": values}))
    assert back["name"].dtype == object
    assert list(back["name"]) == list(values)


def test_masked_string_and_numeric_columns(cat_butler):
    table = Table({
        "s": MaskedColumn(["a", "bb", "c"], mask=[False, True, False]),
        "f": MaskedColumn([1.5, 2.5, 3.5], mask=[True, False, False]),
    })
    back = _round_trip(cat_butler, table)
    assert list(back["s"].mask) == [False, True, False]
    assert list(back["f"].mask) == [True, False, False]
    assert back["s"][0] == "a" and back["f"][2] == 3.5


def test_time_columns_keep_value_format_scale(cat_butler):
    times = Time(["2020-01-01T00:00:00.123456789", "2021-06-01T12:00:00"], scale="tai",
                 precision=6)
    back = _round_trip(cat_butler, Table({"t": times, "id": [1, 2]}))
    got = back["t"]
    assert isinstance(got, Time)
    assert (got.format, got.scale, got.precision) == ("isot", "tai", 6)
    assert np.all(got.jd1 == times.jd1) and np.all(got.jd2 == times.jd2)


def test_qtable_comes_back_a_qtable_with_quantities(cat_butler):
    q = QTable({
        "flux": [1.0, 2.0] * u.nJy,
        "size": Masked([1.0, 2.0] * u.arcsec, mask=[False, True]),
        "name": ["a", "b"],
    })
    cat_butler.put(q, "src", visit=5)          # a bare QTable is a catalog without Wcs
    back = cat_butler.get("src", visit=5)
    assert back.wcs is None and back.calib is None
    table = back.to_table()
    assert isinstance(table, QTable)
    assert isinstance(table["flux"], u.Quantity) and table["flux"].unit == u.nJy
    assert list(table["size"].mask) == [False, True]


def test_columns_parameter_reads_string_columns_alone(cat_butler):
    table = Table({"id": [1, 2], "band": ["g", "r"], "v": np.array(["x", "yy"], dtype=object)})
    cat_butler.put(SourceCatalog(table), "src", visit=1)
    got = cat_butler.get("src", visit=1, parameters={"columns": ["v", "band"]})
    assert got.columns == ("v", "band") and list(got["v"]) == ["x", "yy"]


def test_unstorable_columns_are_refused_clearly(cat_butler):
    mixed = np.array(["a", 1], dtype=object)
    with pytest.raises(EncodingError, match="object dtype holding a int"):
        cat_butler.put(SourceCatalog(Table({"m": mixed})), "src", visit=1)
    located = Time(["2020-01-01"], location=(0 * u.m, 0 * u.m, 0 * u.m))
    with pytest.raises(EncodingError, match="location"):
        cat_butler.put(SourceCatalog(Table({"t": located})), "src", visit=2)


def test_numeric_tables_keep_their_manifest_form(cat_butler):
    # Manifests written before string columns existed have no "encoding" key: a
    # numeric table must still produce exactly that form (and so its old digest).
    from compstore.storage_classes import get_storage_class

    table = Table({"id": np.arange(3), "x": np.ones(3)})
    described = get_storage_class("Table").disassemble(table).attributes["columns"]
    assert [sorted(c) for c in described] == [
        ["description", "format", "masked", "meta", "name", "unit"]] * 2


def test_to_table_shares_data_but_not_structure(cat_butler):
    table = Table({"id": [1, 2]})
    cat = SourceCatalog(table)
    out = cat.to_table()
    out["extra"] = [3, 4]
    assert cat.columns == ("id",) and out.colnames == ["id", "extra"]
    assert np.shares_memory(np.asarray(out["id"]), np.asarray(cat.table["id"]))


_visits = itertools.count(1000)
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(_text, min_size=0, max_size=20), fixed=st.booleans())
def test_string_columns_round_trip_exactly(cat_butler, values, fixed):
    column = np.array(values, dtype=str if fixed else object)
    if fixed and column.dtype.itemsize == 0:
        column = column.astype("<U1")
    table = Table({"s": column})
    visit = next(_visits)
    cat_butler.put(SourceCatalog(table), "src", visit=visit)
    back = cat_butler.get("src", visit=visit).table
    assert list(back["s"]) == list(column)
    assert back["s"].dtype == column.dtype
