"""Fault injection on a devnet of real processes (issue 10): ``python -m tools.chaos``.

Nothing accepted is ever lost, and the network always comes back. Each run
starts N validator daemons (each in a network namespace of its own, see
:mod:`.netns`), has clients submit records to every node throughout
(:mod:`.clients`), carries out a seeded schedule of faults (:mod:`.schedule`:
kill -9 of one, two or all validators, SIGSTOP/SIGCONT, a clean restart of
all, partitions), heals everything, and checks (:mod:`.checks`, run by
:mod:`.runner`): forks, acknowledged records not committed, liveness and
recovery time, processes alive, tracebacks, double-signs. :mod:`.report`
prints a block per run and a totals line, or JSON. docs/RELIABILITY.md is the
user's guide and holds the measured figures.
"""
