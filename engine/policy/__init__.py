"""Models behind one port: `Policy.complete` (and `complete_all` for batches), the spec
parser (`--policy local|openai:M@URL|vllm:M|file:P|random`), the backends (transformers
in-process, any OpenAI-compatible server, vLLM in-process, a recorded file, a seeded random
agent), sampling seeded per call, and the one adapter digest.

May import: schemas only; torch, transformers, peft, vllm and openai inside the backends
that need them.
"""
