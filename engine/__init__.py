"""The engine: one package per concern, layered bottom to top (tests/unit/test_layers.py keeps
the order): memory, log, envs, policy, agent, structure, episodes, models, rollout, audit,
scoring, dataset, training, evaluation, views, evolve, loop, cli.

May import: nothing; it only names the packages beneath it.
"""
