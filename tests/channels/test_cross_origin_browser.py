"""A plain HTML page on a second origin, in a real browser, with API keys on: it submits
a job (CORS), mints a stream token, follows the job by EventSource (``onmessage``, with
``?plain=1``) and by WebSocket, and shows its progress and result."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.channels.conftest import PREFIX, Server
from tests.channels.test_browser import CHROMIUM, CHROMIUM_ARGS, require_browser

KEY = "page-key"
TEXTS = "items => items.map(i => i.textContent)"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>another origin</title></head>
<body>
<p>progress: <span id="progress"></span></p>
<p>result: <span id="result"></span></p>
<ol id="sse"></ol>
<ol id="ws"></ol>
<p>ws closed: <span id="closed"></span></p>
<script>
const params = new URLSearchParams(location.search);
const api = params.get("api"), key = params.get("key");
const auth = {"Authorization": "Bearer " + key};
function item(list, text) {
  const li = document.createElement("li"); li.textContent = text;
  document.getElementById(list).appendChild(li);
}
async function post(path, body) {
  const response = await fetch(api + path, {
    method: "POST",
    headers: {...auth, "Content-Type": "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}
(async () => {
  const job = await post("", {job: "emit", args: {n: 3, progress_every: 1, pace: 0.05}});
  const stream = await post("/" + job.id + "/stream-token");
  const source = new EventSource(stream.events_url + "&plain=1");
  source.onmessage = (m) => {
    const e = JSON.parse(m.data);
    item("sse", e.type);
    if (e.type === "progress") {
      document.getElementById("progress").textContent =
        e.data.current + "/" + e.data.total;
    }
    if (e.type === "succeeded") {
      document.getElementById("result").textContent = JSON.stringify(e.data.result);
      source.close();
    }
  };
  source.onerror = () => item("sse", "error");
  const ws = new WebSocket(stream.ws_url);
  ws.onmessage = (m) => item("ws", JSON.parse(m.data).type);
  ws.onclose = (c) => { document.getElementById("closed").textContent = c.code; };
})().catch((error) => { document.getElementById("result").textContent = "" + error; });
</script>
</body></html>
"""


class PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page_origin() -> Iterator[str]:
    """A second origin: a tiny HTTP server on its own port serving only the page."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


async def test_a_page_on_another_origin_follows_its_job_by_eventsource_and_websocket_with_keys(
    servers: Callable[..., Server], page_origin: str
) -> None:
    require_browser()
    from playwright.async_api import async_playwright

    server = servers(
        JOBWIRE_API_KEYS=f"{KEY}=page",
        JOBWIRE_ALLOWED_ORIGINS=page_origin,
        CHANNELS_CORS_ORIGINS=page_origin,
    )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{page_origin}/?api={server.url}{PREFIX}&key={KEY}")
            await page.wait_for_function(
                "document.getElementById('result').textContent !== ''"
                " && document.getElementById('closed').textContent !== ''",
                timeout=30_000,
            )
            result = await page.inner_text("#result")
            progress = await page.inner_text("#progress")
            sse = await page.eval_on_selector_all(
                "#sse li", "items => items.map(i => i.textContent)"
            )
            ws = await page.eval_on_selector_all("#ws li", "items => items.map(i => i.textContent)")
            closed = await page.inner_text("#closed")
        finally:
            await browser.close()

    assert result == "3"
    assert progress == "3/3"
    expected = ["queued", "started", *["output", "progress"] * 3, "succeeded"]
    assert sse == expected  # every event, as default message events, no error
    assert ws == expected
    assert closed == "1000"
