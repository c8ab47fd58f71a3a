"""The runs page in the browser (docs/runs.md): server-rendered HTML next to the API, in the same app."""
