"""A fix for one pyiceberg 0.12 bug that would lose values on their way into the lake.

pyiceberg rebuilds a ``list<struct<...>>`` column with ``LargeListArray.from_arrays(offsets,
values)`` and no validity mask, so a NULL list is written (and read) as an empty list: the
Parquet file no longer knows the difference, for any engine (apache/iceberg-python#3833; the
fix, #3834, passes the mask and is not released). Bronze has such columns (the transaction
topic's ``data_collections`` is NULL on BEGIN and a list on END; PostgreSQL arrays of
composites). ``apply`` installs the same method with the mask, once, at import of
``catalog``; ``tests/unit/test_iceberg_conform.py`` fails if the fix stops being applied or
needed behaviour changes. Remove it when a pyiceberg release carries #3834.
"""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.io import pyarrow as _pyiceberg_arrow

from pipelines.iceberg.conform import unsliced_offsets

_Visitor = _pyiceberg_arrow.ArrowProjectionVisitor
_LISTS = (pa.ListArray, pa.LargeListArray, pa.FixedSizeListArray)
_ORIGINAL = _Visitor.list


def _list_keeping_nulls(self, list_type, list_array, value_array):  # noqa: ANN001, ANN202
    if not isinstance(list_array, _LISTS) or value_array is None:
        return None
    initializer = pa.large_list if isinstance(list_array, pa.LargeListArray) else pa.list_
    if isinstance(value_array, pa.StructArray):
        mask = list_array.is_null() if list_array.null_count else None
        offsets = unsliced_offsets(list_array) if mask is not None else list_array.offsets
        list_array = pa.LargeListArray.from_arrays(offsets, value_array, mask=mask)
    value_array = self._cast_if_needed(list_type.element_field, value_array)  # noqa: SLF001
    arrow_field = initializer(self._construct_field(list_type.element_field, value_array.type))  # noqa: SLF001
    return list_array.cast(arrow_field)


def apply() -> None:
    if getattr(_Visitor.list, "__name__", "") != _list_keeping_nulls.__name__:
        _Visitor.list = _list_keeping_nulls
