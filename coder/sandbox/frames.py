"""pandas answers as plain data, rebuilt by the trusted replay's own pandas (as numpy arrays are).

A DataFrame is its columns (each a dtype name and plain values), its index and its column labels; a
Series its values, index and name; an Index its dtype, values and name (a RangeIndex its range). Only
dtypes pandas rebuilds from plain values are kept (numeric, bool, datetime/timedelta, str/string,
object); an object column only when every element decodes to plain data, so a candidate's object
hidden in a frame is never compared by its own `__eq__`. Anything else stays unsupported.
"""
from __future__ import annotations

import decimal
import fractions
import sys

_KINDS = frozenset("biufcMm")
_NAMED = frozenset({"object", "str", "string"})
_PLAIN = (type(None), bool, int, float, complex, str, bytes, decimal.Decimal, fractions.Fraction)
TAGS = frozenset({"pdf", "pds", "pix", "pri"})


def is_frame(t: type) -> bool:
    return getattr(t, "__module__", None) == "pandas" and t.__name__ in ("DataFrame", "Series", "Index", "RangeIndex")


def _dtype_name(dtype) -> str | None:
    """numpy dtypes by their exact name (datetimes with their unit), pandas' str/string/object by name."""
    if str(type(dtype).__module__).split(".")[0] == "numpy" and getattr(dtype, "kind", None) in _KINDS:
        return str(dtype.str) if dtype.kind not in "Mm" else str(dtype)
    return str(dtype) if str(dtype) in _NAMED else None


def _values(enc, dtype, array) -> object:
    """A column's values as plain data (datetimes as their int64 counts), or None when unsupported."""
    name = _dtype_name(dtype)
    if name is None:
        return None
    if getattr(dtype, "kind", "") in "Mm" and name not in _NAMED:
        return [name, [int(v) for v in array.view("i8").tolist()]]
    return [name, [enc._enc(v) for v in array.tolist()]]


def encode(enc, x, t: type) -> list:
    """The node for a DataFrame, Series or Index (stage 1 reads it with pandas' own accessors)."""
    import numpy

    def column(values) -> object:
        return _values(enc, values.dtype, numpy.asarray(values) if values.dtype.kind in "Mm" else values.to_numpy())

    if t.__name__ == "RangeIndex":
        return ["pri", int(x.start), int(x.stop), int(x.step), enc._enc(x.name)]
    enc._number(x)
    if t.__name__ == "Index":
        values = column(x)
        return ["pix", values, enc._enc(x.name)] if values is not None else _unsupported(enc, t)
    index = x.index
    if type(index).__name__ not in ("Index", "RangeIndex") or type(index).__module__ != "pandas":
        return _unsupported(enc, t)
    if t.__name__ == "Series":
        values = column(x)
        return ["pds", values, encode(enc, index, type(index)), enc._enc(x.name)] if values is not None else _unsupported(enc, t)
    columns = x.columns
    if type(columns).__name__ not in ("Index", "RangeIndex") or type(columns).__module__ != "pandas":
        return _unsupported(enc, t)
    data = [column(x.iloc[:, i]) for i in range(x.shape[1])]
    if any(v is None for v in data):
        return _unsupported(enc, t)
    return ["pdf", data, encode(enc, index, type(index)), encode(enc, columns, type(columns))]


def _unsupported(enc, t: type) -> list:
    enc.foreign.append(t)
    return ["X", f"pandas.{t.__name__} of a dtype the replay does not rebuild", "pandas"]


def decode(dec, node: list) -> object:
    """Rebuild with the trusted side's pandas (imported by the tests or the prompt, else they cannot look)."""
    pandas, numpy = sys.modules.get("pandas"), sys.modules.get("numpy")
    from coder.sandbox.plain import Unsupported

    if pandas is None or numpy is None:
        raise Unsupported("candidate returned a pandas value, and the tests do not import pandas")
    tag = node[0]
    if tag == "pri":
        return pandas.RangeIndex(int(node[1]), int(node[2]), int(node[3]), name=_label(dec, node[4]))
    i = dec._slot(None)
    if tag == "pix":
        out = pandas.Index(_array(dec, node[1], numpy, pandas), name=_label(dec, node[2]))
    elif tag == "pds":
        out = pandas.Series(_array(dec, node[1], numpy, pandas), index=decode(dec, node[2]), name=_label(dec, node[3]))
    elif tag == "pdf":
        arrays = [_array(dec, c, numpy, pandas) for c in node[1]]
        index, columns = decode(dec, node[2]), decode(dec, node[3])
        if len(columns) != len(arrays):
            raise ValueError("malformed recording: DataFrame columns")
        out = pandas.DataFrame(dict(enumerate(arrays)), index=index) if arrays else pandas.DataFrame(index=index)
        out.columns = columns
    else:
        raise ValueError(f"malformed recording tag {tag!r}")
    dec.objs[i] = out
    return out


def _label(dec, node) -> object:
    value = dec._dec(node)
    if not _plain(value):
        raise ValueError("malformed recording: pandas label")
    return value


def _array(dec, node, numpy, pandas):
    """A column from its dtype name and plain values; object columns only of plain data."""
    from coder.sandbox.plain import Unsupported

    if type(node) is not list or len(node) != 2 or type(node[0]) is not str or type(node[1]) is not list:
        raise ValueError("malformed recording: pandas column")
    name, raw = node
    if name in _NAMED:
        values = [dec._dec(v) for v in raw]
        if not all(map(_plain, values)):
            raise Unsupported("candidate returned a pandas object column holding values that are not plain data")
        if name != "object":
            return pandas.array(values, dtype=name)
        out = numpy.empty(len(values), dtype=object)
        for k, v in enumerate(values):
            out[k] = v
        return out
    dtype = numpy.dtype(name)
    if dtype.kind not in _KINDS:
        raise ValueError("malformed recording: pandas dtype")
    if dtype.kind in "Mm":
        if any(type(v) is not int for v in raw):
            raise ValueError("malformed recording: datetime column")
        return numpy.array(raw, dtype="i8").view(dtype)
    values = [dec._dec(v) for v in raw]
    if any(type(v) not in (bool, int, float, complex) for v in values):
        raise ValueError("malformed recording: numeric column")
    return numpy.array(values, dtype=dtype)


def _plain(value) -> bool:
    t = type(value)
    if t in _PLAIN:
        return True
    if t in (list, tuple, set, frozenset):
        return all(map(_plain, value))
    if t is dict:
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return False
