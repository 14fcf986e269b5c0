"""branchnet protocol: sans-IO, deterministic, no sockets, no clocks, no threads.

Everything here is a pure function or a state machine. ``node/`` does the I/O.
See docs/PROTOCOL.md for the wire format this package implements.
"""
