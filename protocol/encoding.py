"""Canonical msgpack encoding.

Rules (docs/PROTOCOL.md §Encoding):

* Allowed values: ``None``, ``bool``, integers in [-2**63, 2**64-1], ``bytes``
  (msgpack bin), ``str`` (msgpack str, valid UTF-8) and arrays of allowed values.
* No floats, no maps, no ext types — structures are fixed-order arrays.
* Every value uses the shortest msgpack form (that is what ``msgpack.packb``
  emits). Decoding re-encodes and compares, so any non-shortest form, trailing
  bytes or wrong type is rejected: one value has exactly one encoding.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import DecodeError, LocalProtocolError

MAX_DEPTH = 16
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise LocalProtocolError("structure nested too deeply", field="encoding")
    t = type(value)
    if t is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise LocalProtocolError(f"integer {value} out of range", field="encoding")
    elif t is list or t is tuple:
        for item in value:
            _check(item, depth + 1)
    elif t is bytes or t is str or t is bool or value is None:
        pass
    else:
        raise LocalProtocolError(f"type {t.__name__} is not encodable", field="encoding")


def encode(value: Any) -> bytes:
    """Encode ``value`` canonically. Raises LocalProtocolError for unencodable values."""
    _check(value, 0)
    return msgpack.packb(value, use_bin_type=True)


def encode_checked(value: Any) -> bytes:
    """Encode a value assembled only from fields that were type-checked already (the body of
    a decoded record, a state entry made of one): the same bytes as :func:`encode`, without
    its walk over every element (which costs more than the packing)."""
    return msgpack.packb(value, use_bin_type=True)


def _reject_non_canonical_types(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise DecodeError("nested too deeply", field="encoding", reason="too_deep")
    if type(value) is list:
        for item in value:
            _reject_non_canonical_types(item, depth + 1)
    elif type(value) is float:
        raise DecodeError("floats are not allowed", field="encoding", reason="float")
    elif type(value) is dict:  # only the empty map gets past max_map_len=0
        raise DecodeError("maps are not allowed (structures are arrays)", field="encoding", reason="map")
    elif isinstance(value, msgpack.ExtType):  # only a zero-length ext gets past max_ext_len=0
        raise DecodeError("ext types are not allowed", field="encoding", reason="ext")


def decode(data: bytes, *, max_size: int, check_types: bool = True) -> Any:
    """Decode canonical bytes. Raises DecodeError naming what is wrong.

    ``check_types=False`` skips the walk that rejects floats; only for callers
    whose typed decoder checks the type of every leaf (records do), since the
    ``expect_*`` helpers reject floats anyway.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("expected bytes", field="encoding", reason="not_bytes")
    data = bytes(data)
    if len(data) > max_size:
        raise DecodeError(
            f"{len(data)} bytes exceeds the limit of {max_size}", field="encoding", reason="oversize"
        )
    if not data:
        raise DecodeError("empty input", field="encoding", reason="empty")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_map_len=0,
            max_ext_len=0,
        )
    except msgpack.ExtraData:
        raise DecodeError("trailing bytes after value", field="encoding", reason="trailing") from None
    except UnicodeDecodeError:
        raise DecodeError("string is not valid UTF-8", field="encoding", reason="utf8") from None
    except (ValueError, msgpack.UnpackException, TypeError, RecursionError) as exc:
        raise DecodeError(f"malformed msgpack ({exc})", field="encoding", reason="malformed") from None
    if check_types:
        _reject_non_canonical_types(value, 0)
    if msgpack.packb(value, use_bin_type=True) != data:
        raise DecodeError("non-canonical encoding", field="encoding", reason="non_canonical")
    return value


# ---------------------------------------------------------------- field checks
# Small helpers used by every decoder so that errors name the field.


def expect_array(value: Any, length: int, field: str) -> list:
    if type(value) is not list:
        raise DecodeError("expected an array", field=field, reason="type")
    if len(value) != length:
        raise DecodeError(f"expected {length} elements, got {len(value)}", field=field, reason="arity")
    return value


def expect_list(value: Any, field: str, *, max_len: int) -> list:
    if type(value) is not list:
        raise DecodeError("expected an array", field=field, reason="type")
    if len(value) > max_len:
        raise DecodeError(f"at most {max_len} elements allowed", field=field, reason="too_long")
    return value


def expect_int(value: Any, field: str, *, lo: int = 0, hi: int = 2**63 - 1) -> int:
    if type(value) is not int:
        raise DecodeError("expected an integer", field=field, reason="type")
    if not lo <= value <= hi:
        raise DecodeError(f"{value} outside [{lo}, {hi}]", field=field, reason="range")
    return value


def expect_bytes(value: Any, field: str, *, size: int | None = None, max_len: int | None = None) -> bytes:
    if type(value) is not bytes:
        raise DecodeError("expected bytes", field=field, reason="type")
    if size is not None and len(value) != size:
        raise DecodeError(f"expected {size} bytes, got {len(value)}", field=field, reason="size")
    if max_len is not None and len(value) > max_len:
        raise DecodeError(f"at most {max_len} bytes allowed", field=field, reason="too_long")
    return value


def expect_str(value: Any, field: str, *, max_len: int, min_len: int = 0) -> str:
    if type(value) is not str:
        raise DecodeError("expected a string", field=field, reason="type")
    if not min_len <= len(value) <= max_len:
        raise DecodeError(
            f"length {len(value)} outside [{min_len}, {max_len}]", field=field, reason="length"
        )
    return value


def expect_bool(value: Any, field: str) -> bool:
    if type(value) is not bool:
        raise DecodeError("expected a boolean", field=field, reason="type")
    return value
