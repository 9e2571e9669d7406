"""The non-search commands as library functions: each takes a model source (or handle), its
typed options (`options.py`) and `LoadOptions`, and returns plain, JSON-ready data.
`api.py` is the facade over them; `cli/` parses flags into the same options and renders the
result. Importing this package imports nothing heavy: each command module is imported by
whoever runs it."""
