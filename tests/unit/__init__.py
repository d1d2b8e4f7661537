"""Unit tests: one module's pure core, in-process, no model, no game, no subprocess."""
