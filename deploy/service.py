"""The app the deployment examples run: the quick-start app with ``/metrics`` mounted.

Replace it with your own module: the image runs ``uvicorn service:app`` for the API and
``jobwire worker service:jobs`` for workers.
"""

from examples.app import app, jobs

app.include_router(jobs.metrics_router)

__all__ = ["app", "jobs"]
