"""The branchnet node daemon: all I/O (networking, storage, API) lives under here."""
