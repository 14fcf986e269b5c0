"""A tiny protobuf wire writer, so the adversary can say what no protobuf library
would let it: invalid UTF-8 in string fields, wrong wire types, bad varints,
lengths that run past the end, deep groups.

Only what the pubsub mutations need; nothing here validates anything.
"""

from __future__ import annotations

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5


def varint(n: int) -> bytes:
    """Unsigned LEB128 (negative numbers as 64-bit two's complement, as protobuf does)."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(field: int, wire_type: int) -> bytes:
    return varint((field << 3) | wire_type)


def field_len(field: int, payload: bytes) -> bytes:
    return key(field, LEN) + varint(len(payload)) + payload


def field_varint(field: int, value: int) -> bytes:
    return key(field, VARINT) + varint(value)


def length_prefixed(body: bytes) -> bytes:
    """A pubsub RPC frame: uvarint length, then the body."""
    return varint(len(body)) + body


def nested_groups(field: int, depth: int) -> bytes:
    """``depth`` start-groups of ``field`` closed by as many end-groups."""
    return key(field, SGROUP) * depth + key(field, EGROUP) * depth
