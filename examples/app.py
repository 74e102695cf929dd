"""The quick start: ``uvicorn examples.app:app``, then open http://127.0.0.1:8000/docs."""

from fastapi import FastAPI

from jobwire import JobContext, Jobwire

jobs = Jobwire()  # store URL from JOBWIRE_URL, default sqlite:///./jobwire.db


@jobs.job(retries=2, timeout=60)  # def → runs in a worker process
def crunch(ctx: JobContext, n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
        if i % 100_000 == 0:
            ctx.progress(i, n)
    return total


@jobs.job  # async def → runs on the worker's loop
async def crawl(ctx: JobContext, urls: list[str]) -> int:
    for i, url in enumerate(urls, 1):
        ctx.output({"url": url})  # a partial result event
        ctx.progress(i, len(urls), message=url)
    return len(urls)


app = FastAPI(lifespan=jobs.lifespan)  # embedded workers live and die with the app
app.include_router(jobs.router, prefix="/jobs")
