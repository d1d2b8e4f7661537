"""The agent: one episode as a step machine (LOG then PLAN each step, every model call a
`Call` yielded to whoever drives it), the command parser and the prompts. The parser and the
prompts are pure; the step machine writes through the log port it is handed.

May import: schemas, memory, log (the port only), envs (the contract only), policy (the port
and sampling).
"""
