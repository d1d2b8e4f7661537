"""Loop 1: the reviewer reads whole trajectories and proposes a revised structure; each
candidate is validated, played on selection seeds and accepted only when it beats its parent.

May import: every engine package below it; never the loop, the CLI or consumers.
"""
