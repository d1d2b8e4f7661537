"""Model versions from creation to promotion: the registry folded from `model/*` streams
(registry), a trained adapter written into the store as a content-addressed version
(versions), `model:NAME` loaded as a policy (load), and an evaluation and its promotion
recorded (promotion). Every adapter is hashed by `engine.policy.adapters.adapter_digest`.

May import: schemas, log, policy.
"""
