"""`dynface ui`: a Gradio web UI over `Restorer` and the photo pipeline.

Modules: `traces` (pictures and tables of what the method decided), `jobs` (runs one request:
limits, progress, cancel, outputs), `app` (the page and the `/restore` API endpoint), `server`
(safe launch: localhost, optional auth, temporary folders). Needs the `ui` extra:
`pip install "dynface[ui]"`.
"""
