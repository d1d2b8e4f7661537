"""Helpers shared by the tests: the CLI as a subprocess, the broker, model fixtures, samples."""
