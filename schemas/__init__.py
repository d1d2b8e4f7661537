"""The data contract every layer shares: the tagged event union and its checksummed codec,
every stream id built and parsed (streams), every minted id (ids), the structure document,
the bounds on input (limits), user errors and the installed version.

May import: nothing from automem; msgspec and the standard library only.
"""
