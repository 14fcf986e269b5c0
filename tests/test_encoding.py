"""protocol/encoding.py: canonical msgpack, and the field helpers."""

import msgpack
import pytest

from protocol.encoding import (
    MAX_DEPTH,
    decode,
    encode,
    expect_array,
    expect_bool,
    expect_bytes,
    expect_int,
    expect_list,
    expect_str,
)
from protocol.errors import DecodeError, LocalProtocolError


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, 1, -1, 127, 128, -32, -33, 2**63 - 1, -(2**63), 2**64 - 1, b"", b"\x00" * 300,
     "", "branch", "中文", [], [1, [2, [3]]], [None, b"x", "y", True]],
    ids=repr,
)
def test_round_trip(value):
    data = encode(value)
    assert decode(data, max_size=1 << 16) == value
    assert encode(decode(data, max_size=1 << 16)) == data


def test_tuple_encodes_as_array():
    assert encode((1, 2)) == encode([1, 2]) == b"\x92\x01\x02"


@pytest.mark.parametrize(
    "value",
    [1.5, {"a": 1}, {1, 2}, bytearray(b"x"), 2**64, -(2**63) - 1, object()],
    ids=["float", "map", "set", "bytearray", "too_big", "too_small", "object"],
)
def test_unencodable_values_are_local_errors(value):
    with pytest.raises(LocalProtocolError) as exc:
        encode(value)
    assert exc.value.field == "encoding"


def test_encode_rejects_deep_nesting():
    value: list = []
    for _ in range(MAX_DEPTH + 1):
        value = [value]
    with pytest.raises(LocalProtocolError):
        encode(value)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"\x01\x02", "trailing"),                       # two values
        (b"\xd0\x05", "non_canonical"),                  # int8 for a fixint
        (b"\xcd\x00\x01", "non_canonical"),              # uint16 for a fixint
        (b"\xcf" + (5).to_bytes(8, "big"), "non_canonical"),  # uint64 for a fixint
        (b"\xd9\x01a", "non_canonical"),                 # str8 where fixstr fits
        (b"\xdc\x00\x01\x01", "non_canonical"),          # array16 where fixarray fits
        (b"\xc5\x00\x01x", "non_canonical"),             # bin16 where bin8 fits
        (b"\xa1a\x00", "trailing"),
        (b"\xcb" + b"\x3f\xf0" + b"\x00" * 6, "float"),  # float64 1.0
        (b"\xca\x3f\x80\x00\x00", "float"),              # float32 1.0
        (b"\x81\x01\x02", "malformed"),                  # map
        (b"\xd4\x01\x00", "malformed"),                  # fixext
        (b"\xc1", "malformed"),                          # never-used byte
        (b"\x92\x01", "malformed"),                      # truncated array
        (b"\xa2\xff\xfe", "utf8"),
        (b"\x91" * (MAX_DEPTH + 2) + b"\xc0", "too_deep"),
    ],
    ids=lambda v: v if isinstance(v, str) else v[:6].hex(),
)
def test_decode_rejects(data, reason):
    with pytest.raises(DecodeError) as exc:
        decode(data, max_size=1024)
    assert exc.value.reason == reason
    assert exc.value.field == "encoding"


def test_float_inside_array_rejected():
    data = msgpack.packb([1, 2.5])
    with pytest.raises(DecodeError) as exc:
        decode(data, max_size=100)
    assert exc.value.reason == "float"


def test_decode_size_limit_and_type():
    with pytest.raises(DecodeError) as exc:
        decode(encode(b"x" * 100), max_size=50)
    assert exc.value.reason == "oversize"
    with pytest.raises(DecodeError) as exc:
        decode("not bytes", max_size=50)  # type: ignore[arg-type]
    assert exc.value.reason == "not_bytes"
    assert decode(memoryview(encode([1])), max_size=10) == [1]


def test_non_canonical_rejected_even_without_type_walk():
    with pytest.raises(DecodeError) as exc:
        decode(b"\xd9\x01a", max_size=10, check_types=False)
    assert exc.value.reason == "non_canonical"


@pytest.mark.parametrize(
    "call, reason",
    [
        (lambda: expect_array("x", 2, "f"), "type"),
        (lambda: expect_array([1], 2, "f"), "arity"),
        (lambda: expect_list((1,), "f", max_len=3), "type"),
        (lambda: expect_list([1, 2, 3, 4], "f", max_len=3), "too_long"),
        (lambda: expect_int(True, "f"), "type"),
        (lambda: expect_int(1.0, "f"), "type"),
        (lambda: expect_int(-1, "f"), "range"),
        (lambda: expect_int(11, "f", hi=10), "range"),
        (lambda: expect_bytes("ab", "f"), "type"),
        (lambda: expect_bytes(b"ab", "f", size=3), "size"),
        (lambda: expect_bytes(b"abcd", "f", max_len=3), "too_long"),
        (lambda: expect_str(b"ab", "f", max_len=5), "type"),
        (lambda: expect_str("abcdef", "f", max_len=5), "length"),
        (lambda: expect_str("", "f", max_len=5, min_len=1), "length"),
        (lambda: expect_bool(1, "f"), "type"),
    ],
)
def test_expect_helpers(call, reason):
    with pytest.raises(DecodeError) as exc:
        call()
    assert exc.value.reason == reason
    assert exc.value.field == "f"


def test_expect_helpers_accept():
    assert expect_array([1, 2], 2, "f") == [1, 2]
    assert expect_int(-5, "f", lo=-5) == -5
    assert expect_bytes(b"abc", "f", size=3) == b"abc"
    assert expect_str("ok", "f", max_len=2) == "ok"
    assert expect_bool(False, "f") is False


@pytest.mark.parametrize("data, reason", [
    (b"\x80", "map"),                 # empty map
    (b"\x91\x80", "map"),             # empty map inside an array
    (b"\xc7\x00\x05", "ext"),         # zero-length ext
    (b"\x91\xc7\x00\x05", "ext"),
])
def test_generic_decode_rejects_empty_maps_and_ext(data, reason):
    with pytest.raises(DecodeError) as info:
        decode(data, max_size=64)
    assert info.value.reason == reason
