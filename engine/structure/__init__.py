"""Memory structures: the starting lineages (v0, v0-small), the validity check of a
proposed document, the diff between two versions and the registry (every document in the log
by version, the one loop 1 accepted last per model class, what `--structure NAME` resolves to).
The check and the diff are pure.

May import: schemas, memory, log (the port), agent (the parser's vocabulary).
"""
