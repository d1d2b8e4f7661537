"""Model versions from creation to promotion: the registry folded from `model/*` streams,
writing a trained adapter into the store as a content-addressed version, and resolving
`model:NAME` to its verified adapter.

May import: schemas, log, policy.
"""
