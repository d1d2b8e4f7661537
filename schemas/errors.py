"""The one exception family users can act on; the CLI maps it to exit status 2."""


class UserError(Exception):
    """Bad input or environment: the message says what was wrong and how to fix it."""
