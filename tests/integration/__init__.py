"""Integration tests: packages together in-process, on real LMDB, the real games and the embedded model."""
