"""What people look at: terminal helpers, output files beside the store, the step-by-step
trace (`automem show`) and the self-contained episode page (`automem report`).

May import: every engine package below it (schemas up to evaluation); never the loop, the CLI or consumers.
"""
