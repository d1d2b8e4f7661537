"""The embedded store as a file: its LMDB pages checked without LMDB, and check, backup, restore.

`pages` has no dependency on the log (the log imports it to vet a file before mapping it);
`check` and `backup` build on the log.

May import: schemas, engine.memory, engine.log's port; nothing above the log.
"""
