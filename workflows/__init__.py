"""Flowtide's workflow side, in two rooms and a shelf of shared facts.

- ``language``: the flow language (documents, models, validation, JSON Schema, templates, conditions);
  pure Python, no Temporal.
- ``engine``: the Temporal workflows that interpret a flow; deterministic workflow code.
- Shared by both rooms, the activities and the client, each fact in one module: ``errors`` (the error
  taxonomy), ``kinds`` (the step kinds), ``retry`` (presets and family defaults), ``limits`` (run limits),
  ``search_attributes`` (workflow type, task queue, search attributes, memo keys) and ``contracts`` (the
  typed data that crosses the workflow/activity boundary).

Nothing is imported here: the Temporal workflow sandbox imports this package first, and it stays cheap.
"""
