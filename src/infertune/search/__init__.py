"""`infertune optimize`: the accuracy-aware search over passes × runtimes.

Pure parts (no framework): `ids` (content-derived candidate ids), `pareto` (the front),
`select` (drops with intervals, the budget, the pick), `screening` (multi-fidelity rules),
`journal` (the append-only record a run resumes from, and the run lock), `space` (which
candidates a model gets, stage by stage). Framework parts: `worker` (builds and evaluates one
candidate in a child process), `executors` (local or Ray), `engine` (the loop), `best`
(the exported pick, model card, Triton repository).
"""
