"""`evolve ui`: a local, read-only web app over the lineage database.

Pages: the experiments (status, budgets, champions), one experiment (score and time over wall
time with the champion's line, the lineage tree, filters), and one candidate (its diff, cascade
verdicts, samples, profile, promotion and LLM call). Pages poll a cheap change fingerprint of the
database every few seconds and refresh what changed, so they follow a running search.

Choices, and why:
- Starlette + uvicorn: small, well-kept (Encode) ASGI libraries with no framework around them.
  Plain sync route functions run in Starlette's thread pool, so the Store's blocking SQLAlchemy
  sessions need no async driver. uvicorn is the reference ASGI server.
- Jinja2 (autoescape on) renders the pages and Pygments highlights code and diffs on the server:
  every string from an LLM or a candidate is escaped before it reaches the browser, and a strict
  Content-Security-Policy (scripts from /static only) backs that up.
- Apache ECharts (vendored from npm, Apache-2.0, in static/) draws both the plot and the lineage
  tree on a canvas: one library, built-in zoom, pan, time axes and a tree series that stays fast
  at thousands of nodes. Nothing loads from the internet.
- The database is opened read-only (SQLite mode=ro with query_only, PostgreSQL read-only
  transactions), so the UI can never write it, and it runs no candidate code.

The web libraries load only when the `ui` command runs; torch is never imported by this package.
"""
