// The jobwire dashboard: plain DOM, no dependencies. Each view reads its history from
// the server, then follows the live streams; the server sends at most ten batches a
// second, and views redraw from those batches (or re-read, throttled) — never on a timer
// that asks the server.
"use strict";

const BASE = meta("jobwire-base");
const CSRF = meta("jobwire-csrf");
const API = BASE + "/api";
const STATES = ["queued", "running", "succeeded", "failed", "cancelled"];
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const EVENT_STATE = {
  queued: "queued", started: "running", retrying: "queued",
  succeeded: "succeeded", failed: "failed", cancelled: "cancelled",
};

function meta(name) {
  return document.querySelector(`meta[name="${name}"]`).content;
}

// -- DOM -------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(3)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") el.setAttribute("class", value);
    else el.setAttribute(key, value);
  }
  for (const child of children.flat()) if (child) el.append(child);
  return el;
}

function badge(state) {
  return h("span", { class: `state ${state}` }, state);
}

function time(ts) {
  if (ts === null || ts === undefined) return "—";
  const d = new Date(ts * 1000);
  return h("time", { datetime: d.toISOString(), title: d.toISOString() }, d.toLocaleString());
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function json(value) {
  return JSON.stringify(value, null, 2);
}

function progressBar(progress, id) {
  const p = progress || { current: 0, total: null, message: null };
  const attrs = { id, value: p.current };
  if (p.total) attrs.max = p.total;
  const label = p.total ? `${p.current} / ${p.total}` : `${p.current}`;
  return h("span", { class: "progress" },
    h("progress", attrs), " ", h("span", { class: "muted" }, label, p.message ? ` · ${p.message}` : ""));
}

function throttle(fn, ms) {
  // At most one call per `ms`; a call made meanwhile runs once when the time is up.
  let last = 0, timer = null;
  return () => {
    const wait = last + ms - Date.now();
    if (wait <= 0 && !timer) {
      last = Date.now();
      fn();
    } else if (!timer) {
      timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, Math.max(0, wait));
    }
  };
}

// -- server ------------------------------------------------------------------------------

class Problem extends Error {}

async function answer(response) {
  if (response.status === 401) {
    location.href = BASE + "/login";
    throw new Problem("signed out");
  }
  const body = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || body);
    throw new Problem(`${response.status}: ${detail}`);
  }
  return body;
}

async function get(path) {
  return answer(await fetch(API + path, { headers: { Accept: "application/json" } }));
}

async function post(path, body) {
  return answer(await fetch(API + path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Jobwire-CSRF": CSRF },
    body: JSON.stringify(body || {}),
  }));
}

// The global stream: one EventSource for the page's life, batches handed to the view.
const feed = { listeners: new Set() };

function startFeed() {
  const source = new EventSource(API + "/events");
  const lamp = document.getElementById("live");
  source.onopen = () => { lamp.classList.remove("off"); };
  source.onerror = () => { lamp.classList.add("off"); };
  source.addEventListener("batch", (message) => {
    const events = JSON.parse(message.data);
    for (const listener of feed.listeners) listener(events);
  });
  window.jobwireFeed = source;
}

// -- views -------------------------------------------------------------------------------

let current = null; // the view on screen: { stop() }

function route() {
  if (current) current.stop();
  feed.listeners.clear();
  const [path, query] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const parts = (path || "/").split("/").filter(Boolean);
  const main = document.getElementById("view");
  main.replaceChildren();
  let name = "overview";
  if (parts[0] === "jobs" && parts[1]) { name = "jobs"; current = jobView(main, parts[1]); }
  else if (parts[0] === "jobs") { name = "jobs"; current = jobsView(main, params); }
  else if (parts[0] === "workers") { name = "workers"; current = workersView(main); }
  else if (parts[0] === "schedules") { name = "schedules"; current = schedulesView(main); }
  else if (parts[0] === "workflows" && parts[1]) { name = "jobs"; current = workflowView(main, parts[1]); }
  else current = overviewView(main);
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.nav === name);
  }
}

function failure(main, error) {
  main.replaceChildren(h("p", { class: "error" }, String(error.message || error)));
}

// Overview ---------------------------------------------------------------------------------

function overviewView(main) {
  let stopped = false;
  const load = async () => {
    try {
      const data = await get("/overview");
      if (!stopped) main.replaceChildren(...overview(data));
    } catch (error) { if (!stopped) failure(main, error); }
  };
  const reload = throttle(load, 1000);
  feed.listeners.add(reload);
  load();
  return { stop() { stopped = true; } };
}

function overview(data) {
  const queues = Object.keys(data.counts);
  const totals = Object.fromEntries(STATES.map((st) => [st, 0]));
  for (const q of queues) for (const st of STATES) totals[st] += data.counts[q][st] || 0;
  const countsTable = h("table", { id: "counts" },
    h("thead", {}, h("tr", {}, h("th", {}, "queue"), STATES.map((st) => h("th", {}, badge(st))),
      h("th", {}, "oldest queued"))),
    h("tbody", {}, queues.map((q) => h("tr", { dataset: { queue: q } }, h("td", {}, q),
      STATES.map((st) => h("td", { class: "num", dataset: { state: st } },
        h("a", { href: `#/jobs?queue=${encodeURIComponent(q)}&state=${st}` }, data.counts[q][st] || 0))),
      h("td", { class: "num" }, data.oldest_queued[q] ? duration(data.oldest_queued[q].age) : "—")))),
    h("tfoot", {}, h("tr", {}, h("th", {}, "all"), STATES.map((st) => h("th", { class: "num" }, totals[st])),
      h("th", {}, ""))));
  const act = data.activity;
  const all = act.overall || {};
  const ages = Object.values(data.oldest_queued).map((o) => o.age);
  return [
    h("section", { class: "tiles" },
      tile("Workers online", data.workers.online, "workers-online",
        data.workers.lost ? `${data.workers.lost} lost` : null),
      tile("Oldest queued job", ages.length ? duration(Math.max(...ages)) : "none waiting", "oldest"),
      tile("Succeeded · last hour", all.succeeded ?? 0, "succeeded-hour"),
      tile("Failed · last hour", all.failed ?? 0, "failed-hour"),
      tile("Wait p50 / p95", `${duration(all.wait_p50)} / ${duration(all.wait_p95)}`, "wait"),
      tile("Run p50 / p95", `${duration(all.run_p50)} / ${duration(all.run_p95)}`, "run")),
    h("h2", {}, "Jobs by queue and state"),
    !data.counts_visible
      ? h("p", { class: "muted" }, "Queue counts cover every owner's jobs: they are shown to viewers who may see every job.")
      : queues.length ? countsTable : h("p", { class: "muted" }, "No jobs yet."),
    h("h2", {}, "Finished per minute, last hour"),
    throughputChart(act.minutes),
    h("p", { class: "legend" }, h("span", { class: "key ok" }, "succeeded"), h("span", { class: "key bad" }, "failed"),
      act.complete ? "" : h("span", { class: "muted" }, " (from the newest jobs only)")),
    h("h2", {}, "Wait and run time per minute (p50, p95)"),
    latencyChart(act.minutes),
    h("p", { class: "legend" }, ["wait_p50", "wait_p95", "run_p50", "run_p95"].map((k) =>
      h("span", { class: `key ${k}` }, k.replace("_", " ")))),
  ];
}

function tile(label, value, id, note) {
  return h("div", { class: "tile" }, h("div", { class: "label" }, label),
    h("div", { class: "value", id }, value), note ? h("div", { class: "note bad" }, note) : null);
}

const W = 720, H = 140, PAD = 28;

function axes(max, unit) {
  return [
    s("line", { x1: PAD, y1: H - PAD, x2: W, y2: H - PAD, class: "axis" }),
    s("text", { x: 2, y: 12, class: "tick" }, document.createTextNode(unit(max))),
    s("text", { x: 2, y: H - PAD, class: "tick" }, document.createTextNode(unit(0))),
  ];
}

function throughputChart(minutes) {
  const max = Math.max(1, ...minutes.map((m) => m.succeeded + m.failed));
  const step = (W - PAD) / Math.max(1, minutes.length);
  const y = (v) => (H - PAD) - (v / max) * (H - PAD - 8);
  const bars = minutes.flatMap((m, i) => {
    const x = PAD + i * step;
    const ok = s("rect", { x, y: y(m.succeeded), width: Math.max(1, step - 1), height: (H - PAD) - y(m.succeeded), class: "ok" });
    const bad = s("rect", { x, y: y(m.succeeded + m.failed), width: Math.max(1, step - 1), height: y(m.succeeded) - y(m.succeeded + m.failed), class: "bad" });
    const title = s("title", {}, document.createTextNode(
      `${new Date(m.start * 1000).toLocaleTimeString()}: ${m.succeeded} succeeded, ${m.failed} failed`));
    return [s("g", {}, ok, bad, title)];
  });
  return s("svg", { id: "throughput", class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img" },
    ...axes(max, (v) => String(Math.round(v))), ...bars);
}

function latencyChart(minutes) {
  const keys = ["wait_p50", "wait_p95", "run_p50", "run_p95"];
  const values = minutes.flatMap((m) => keys.map((k) => m[k]).filter((v) => v !== null));
  const max = Math.max(0.001, ...values);
  const step = (W - PAD) / Math.max(1, minutes.length);
  const y = (v) => (H - PAD) - (v / max) * (H - PAD - 8);
  const lines = keys.flatMap((k) => {
    const points = minutes.map((m, i) => m[k] === null ? null : [PAD + i * step + step / 2, y(m[k])])
      .filter(Boolean);
    // A dot per minute too: a minute alone has no line to draw.
    return [s("polyline", { points: points.map((p) => p.join(",")).join(" "), class: `line ${k}` }),
      ...points.map(([cx, cy]) => s("circle", { cx, cy, r: 2.5, class: `dot ${k}` }))];
  });
  return s("svg", { id: "latency", class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img" },
    ...axes(max, duration), ...lines);
}

// Jobs -------------------------------------------------------------------------------------

function jobsView(main, params) {
  let stopped = false;
  const cursor = params.get("cursor");
  const filters = new URLSearchParams(params);
  filters.delete("cursor");
  const rows = new Map(); // job id → its row
  const table = h("table", { id: "jobs" },
    h("thead", {}, h("tr", {}, ["id", "job", "state", "queue", "owner", "attempts", "progress", "created", "finished"]
      .map((c) => h("th", {}, c)))),
    h("tbody"));
  const pager = h("p", { class: "pager" });
  const purgeBox = h("div", { id: "purge-box", class: "card" });
  const cancelBox = h("div", { id: "bulk-cancel-box", class: "card" });

  const form = filterForm(filters);
  main.append(h("h2", {}, "Jobs"), form, table, pager, h("h2", {}, "Cancel unfinished jobs"), cancelBox,
    h("h2", {}, "Purge finished jobs"), purgeBox);
  bulkCancelPanel(cancelBox, filters);
  purgePanel(purgeBox, filters);

  const load = async () => {
    const query = new URLSearchParams(filters);
    for (const key of [...query.keys()]) if (!query.get(key)) query.delete(key);
    for (const key of ["since", "until"]) {
      // A hand-edited address may hold anything: only a real date goes to the server.
      const at = query.get(key) ? Date.parse(query.get(key)) / 1000 : NaN;
      if (Number.isFinite(at)) query.set(key, at);
      else query.delete(key);
    }
    if (cursor) query.set("cursor", cursor);
    try {
      const page = await get("/jobs?" + query);
      if (stopped) return;
      rows.clear();
      table.tBodies[0].replaceChildren(...page.items.map((job) => {
        const row = jobRow(job);
        rows.set(job.id, row);
        return row;
      }));
      if (!page.items.length) table.tBodies[0].append(h("tr", {}, h("td", { colspan: 9, class: "muted" }, "No jobs match.")));
      const next = new URLSearchParams(filters);
      if (page.next_cursor) next.set("cursor", page.next_cursor);
      pager.replaceChildren(
        cursor ? h("a", { href: "#/jobs?" + filters, id: "first-page" }, "« newest") : "",
        " ",
        page.next_cursor ? h("a", { href: "#/jobs?" + next, id: "next-page" }, "older »") : "");
    } catch (error) { if (!stopped) failure(table.tBodies[0], error); }
  };
  // The newest page re-reads when jobs change (new ones appear at the top); older pages
  // update the rows they show from the events themselves.
  const reload = throttle(load, 500);
  feed.listeners.add((events) => {
    if (!cursor) { reload(); return; }
    for (const event of events) {
      const row = rows.get(event.job_id);
      if (!row) continue;
      const state = EVENT_STATE[event.type];
      if (state) row.querySelector("td.state").replaceChildren(badge(state));
      if (event.type === "progress") row.querySelector("td.prog").replaceChildren(progressBar(event.data));
    }
  });
  load();
  return { stop() { stopped = true; } };
}

function jobRow(job) {
  return h("tr", { dataset: { id: job.id, state: job.state } },
    h("td", { class: "id" }, h("a", { href: `#/jobs/${job.id}` }, job.id.slice(0, 8) + "…" + job.id.slice(-4))),
    h("td", {}, job.job),
    h("td", { class: "state" }, badge(job.state)),
    h("td", {}, job.queue),
    h("td", {}, job.owner),
    h("td", { class: "num" }, `${job.attempts}/${job.max_attempts}`),
    h("td", { class: "prog" }, job.progress ? progressBar(job.progress) : "—"),
    h("td", {}, time(job.created_at)),
    h("td", {}, time(job.finished_at)));
}

function filterForm(filters) {
  const field = (name, label, attrs) => h("label", {}, label,
    h("input", { name, value: filters.get(name) || "", ...attrs }));
  const state = h("select", { name: "state" }, h("option", { value: "" }, "any state"),
    STATES.map((st) => h("option", { value: st, selected: filters.get("state") === st }, st)));
  const form = h("form", { id: "filters", class: "filters" },
    h("label", {}, "state", state),
    field("job", "job name", { size: 12 }),
    field("queue", "queue", { size: 8 }),
    field("owner", "owner", { size: 10 }),
    field("since", "created from", { type: "datetime-local" }),
    field("until", "to", { type: "datetime-local" }),
    field("id", "job id", { size: 38, placeholder: "look up by id" }),
    h("button", { type: "submit" }, "Filter"),
    h("a", { href: "#/jobs", class: "button" }, "Clear"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) next.set(key, value);
    location.hash = "#/jobs?" + next;
  });
  return form;
}

function epoch(text) {
  const at = text ? Date.parse(text) / 1000 : NaN;
  return Number.isFinite(at) ? at : null;
}

function purgePanel(box, filters) {
  const chosen = filters.get("state");
  const body = () => ({
    states: TERMINAL.has(chosen) ? [chosen] : [],
    job: filters.get("job") || null,
    queue: filters.get("queue") || null,
    owner: filters.get("owner") || null,
    finished_after: epoch(filters.get("since")),
    finished_before: epoch(filters.get("until")),
  });
  const describe = TERMINAL.has(chosen) ? chosen : "finished (succeeded, failed or cancelled)";
  const note = h("p", { id: "purge-result", class: "muted" });
  const start = h("button", { id: "purge", type: "button", class: "danger" }, "Purge…");
  start.addEventListener("click", async () => {
    try {
      const counted = await post("/purge/count", body());
      const go = h("button", { id: "purge-go", type: "button", class: "danger" }, `Delete ${counted.count} jobs`);
      const back = h("button", { type: "button" }, "Keep them");
      note.replaceChildren(h("span", { id: "purge-confirm" },
        `${counted.count} ${describe} jobs match these filters and will be deleted with their logs. `), go, " ", back);
      back.addEventListener("click", () => note.replaceChildren());
      go.disabled = counted.count === 0;
      go.addEventListener("click", async () => {
        const done = await post("/purge", counted.filter);
        note.replaceChildren(`Deleted ${done.deleted} jobs.`);
      });
    } catch (error) { note.replaceChildren(h("span", { class: "error" }, error.message)); }
  });
  box.append(h("p", {}, `Deletes the ${describe} jobs that match the filters above (state, job name, queue, owner; finished in the time range). You confirm the count first.`),
    start, note);
}

function bulkCancelPanel(box, filters) {
  const chosen = filters.get("state");
  const unfinished = chosen === "queued" || chosen === "running";
  const body = () => ({
    states: unfinished ? [chosen] : [],
    job: filters.get("job") || null,
    queue: filters.get("queue") || null,
    owner: filters.get("owner") || null,
    created_after: filters.get("since") ? Date.parse(filters.get("since")) / 1000 : null,
    created_before: filters.get("until") ? Date.parse(filters.get("until")) / 1000 : null,
  });
  const describe = unfinished ? chosen : "unfinished (queued or running)";
  const note = h("p", { id: "bulk-cancel-result", class: "muted" });
  const start = h("button", { id: "bulk-cancel", type: "button", class: "danger" }, "Cancel…");
  start.addEventListener("click", async () => {
    try {
      const counted = await post("/bulk-cancel/count", body());
      const go = h("button", { id: "bulk-cancel-go", type: "button", class: "danger" }, `Cancel ${counted.count} jobs`);
      const back = h("button", { type: "button" }, "Leave them");
      note.replaceChildren(h("span", { id: "bulk-cancel-confirm" },
        `${counted.count} ${describe} jobs match these filters and will be cancelled (running ones are asked to stop). `), go, " ", back);
      back.addEventListener("click", () => note.replaceChildren());
      go.disabled = counted.count === 0;
      go.addEventListener("click", async () => {
        const done = await post("/bulk-cancel", counted.filter);
        note.replaceChildren(`Cancelled ${done.cancelled} jobs.`);
      });
    } catch (error) { note.replaceChildren(h("span", { class: "error" }, error.message)); }
  });
  box.append(h("p", {}, `Cancels the ${describe} jobs that match the filters above (state, job name, queue, owner; created in the time range). You confirm the count first; jobs submitted after the count are left alone.`),
    start, note);
}

// Job --------------------------------------------------------------------------------------

function jobView(main, id) {
  let stopped = false;
  let source = null;
  let job = null;
  const seen = new Set();

  const load = async () => {
    try {
      job = await get(`/jobs/${encodeURIComponent(id)}`);
    } catch (error) { failure(main, error); return; }
    if (stopped) return;
    seen.clear();
    main.replaceChildren(...jobPage(job, act).flat(2).filter(Boolean));
    for (const event of job.events) seen.add(event.seq);
    follow(job.last_seq);
  };

  const follow = (after) => {
    if (source) source.close();
    if (TERMINAL.has(job.state)) return;
    source = new EventSource(`${API}/jobs/${encodeURIComponent(id)}/events?after=${after}`);
    source.addEventListener("batch", (message) => {
      const events = JSON.parse(message.data).filter((e) => !seen.has(e.seq));
      let ended = false;
      for (const event of events) {
        seen.add(event.seq);
        apply(event);
        if (TERMINAL.has(event.type)) ended = true;
      }
      if (ended || events.some((e) => e.type === "started" || e.type === "retrying")) {
        source.close();
        load(); // result, error, attempts: read them whole
      }
    });
  };

  const apply = (event) => {
    document.querySelector("#events tbody")?.append(eventRow(event));
    if (event.type === "output") {
      document.getElementById("outputs")?.append(h("li", {}, h("code", {}, JSON.stringify(event.data.output))));
    } else if (event.type === "progress") {
      const bar = document.getElementById("job-progress");
      if (bar) {
        if (event.data.total) bar.max = event.data.total;
        bar.value = event.data.current;
        bar.nextSibling.nextSibling.textContent = (event.data.total ? `${event.data.current} / ${event.data.total}` : `${event.data.current}`) + (event.data.message ? ` · ${event.data.message}` : "");
      }
    }
    const state = EVENT_STATE[event.type];
    if (state) document.getElementById("job-state")?.replaceChildren(badge(state));
  };

  const act = async (what) => {
    const note = document.getElementById("action-result");
    try {
      const done = await post(`/jobs/${encodeURIComponent(id)}/${what}`);
      if (what === "retry") location.hash = `#/jobs/${done.id}`;
      else { note.textContent = "Cancel requested."; load(); }
    } catch (error) { note.replaceChildren(h("span", { class: "error" }, error.message)); }
  };

  // The global stream carries the job's state changes too: a second path to the same
  // page, should the job's own stream be between connections when the job moves.
  const refresh = throttle(load, 300);
  feed.listeners.add((events) => {
    if (events.some((e) => e.job_id === id && EVENT_STATE[e.type] && EVENT_STATE[e.type] !== job?.state)) {
      refresh();
    }
  });
  load();
  return { stop() { stopped = true; if (source) source.close(); } };
}

function jobPage(job, act) {
  const outputs = job.events.filter((e) => e.type === "output");
  const actions = h("p", { class: "actions" },
    TERMINAL.has(job.state) ? null : h("button", { id: "cancel", type: "button", class: "danger", onclick: () => act("cancel") },
      job.cancel_requested ? "Cancel requested" : "Cancel"),
    ["failed", "cancelled"].includes(job.state) && !job.retried_by
      ? h("button", { id: "retry", type: "button", onclick: () => act("retry") }, "Retry as a new job") : null,
    h("span", { id: "action-result", class: "muted" }));
  return [
    h("h2", {}, job.job, " ", h("span", { id: "job-state" }, badge(job.state))),
    job.no_worker ? h("p", { id: "no-worker", class: "notice", role: "status" },
      "No live worker runs ", h("code", {}, job.job), " on queue ", h("code", {}, job.queue),
      ": this job stays queued until one starts. Is the name misspelt, or are its workers down?") : null,
    h("dl", { class: "facts" },
      fact("id", h("code", { id: "job-id" }, job.id)),
      fact("owner", job.owner), fact("queue", job.queue), fact("priority", job.priority),
      fact("attempts", `${job.attempts} of ${job.max_attempts}`),
      job.crashes ? fact("lost", h("span", { id: "job-crashes" }, `${job.crashes} of ${job.max_crashes} (worker killed or cut off; not charged to attempts)`)) : null,
      fact("created", time(job.created_at)), fact("started", time(job.started_at)),
      fact("finished", time(job.finished_at)),
      job.retry_of ? fact("retry of", h("a", { id: "retry-of", href: `#/jobs/${job.retry_of}` }, job.retry_of)) : null,
      job.retried_by ? fact("retried by", h("a", { id: "retried-by", href: `#/jobs/${job.retried_by}` }, job.retried_by)) : null,
      job.workflow ? fact("workflow", h("a", { id: "job-workflow", href: `#/workflows/${job.workflow.id}` }, `step ${job.workflow.step} of ${job.workflow.id}`)) : null),
    actions,
    h("h3", {}, "Progress"), progressBar(job.progress, "job-progress"),
    h("h3", {}, "Arguments"), h("pre", { id: "args" }, json(job.args)),
    job.state === "succeeded" ? [h("h3", {}, "Result"), h("pre", { id: "result" }, json(job.result))] : null,
    job.error ? [h("h3", {}, "Error"),
      h("p", { id: "error" }, h("strong", {}, job.error.type), ": ", job.error.message),
      job.error.traceback ? h("pre", { id: "traceback", class: "traceback" }, job.error.traceback) : null] : null,
    h("h3", {}, "Attempts"),
    h("table", { id: "attempts" },
      h("thead", {}, h("tr", {}, ["#", "worker", "started", "ended", "took", "how it ended"].map((c) => h("th", {}, c)))),
      h("tbody", {}, job.attempt_list.map((a) => h("tr", {},
        h("td", { class: "num" }, a.number), h("td", {}, a.worker || "—"), h("td", {}, time(a.started_at)),
        h("td", {}, time(a.ended_at)), h("td", {}, a.ended_at ? duration(a.ended_at - a.started_at) : "running"),
        h("td", {}, a.outcome || "running", a.error ? h("span", { class: "muted" }, ` · ${a.error.type}: ${a.error.message}`) : ""))))),
    h("h3", {}, "Partial outputs"),
    h("ol", { id: "outputs", class: "outputs" }, outputs.map((e) => h("li", {}, h("code", {}, JSON.stringify(e.data.output))))),
    h("h3", {}, "Event log"),
    job.events_complete ? null : h("p", { class: "muted" }, `The first ${job.events.length} of ${job.last_seq} events, then the live ones.`),
    h("table", { id: "events", class: "log" },
      h("thead", {}, h("tr", {}, ["seq", "type", "at", "data"].map((c) => h("th", {}, c)))),
      h("tbody", {}, job.events.map(eventRow))),
  ];
}

function fact(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

function eventRow(event) {
  return h("tr", { dataset: { seq: event.seq, type: event.type } },
    h("td", { class: "num" }, event.seq), h("td", {}, event.type), h("td", {}, time(event.at)),
    h("td", {}, h("code", {}, JSON.stringify(event.data))));
}

// Workers ----------------------------------------------------------------------------------

function workersView(main) {
  let stopped = false;
  let data = null;
  let skew = 0; // server clock − this clock
  const table = h("table", { id: "workers" },
    h("thead", {}, h("tr", {}, ["worker", "host", "pid", "queues", "concurrency", "running", "last heartbeat", "version", "started", ""]
      .map((c) => h("th", {}, c)))),
    h("tbody"));
  main.append(h("h2", {}, "Workers"), table,
    h("p", { class: "muted" }, "A worker is lost when it has not sent a heartbeat for a whole lease."));
  const draw = () => {
    if (!data) return;
    const now = Date.now() / 1000 + skew;
    table.tBodies[0].replaceChildren(...data.items.map((w) => {
      const lost = now - w.last_heartbeat > data.lease_seconds;
      return h("tr", { dataset: { id: w.id }, class: lost ? "lost" : "" },
        h("td", {}, h("code", {}, w.id)), h("td", {}, w.host), h("td", { class: "num" }, w.pid),
        h("td", {}, w.queues.join(", ")), h("td", { class: "num" }, w.concurrency),
        h("td", { class: "num" }, w.running), h("td", {}, `${duration(Math.max(0, now - w.last_heartbeat))} ago`),
        h("td", {}, w.version), h("td", {}, time(w.started_at)),
        h("td", {}, lost ? h("span", { class: "state failed" }, "lost") : h("span", { class: "state succeeded" }, "online")));
    }));
    if (!data.items.length) table.tBodies[0].append(h("tr", {}, h("td", { colspan: 10, class: "muted" }, "No workers registered.")));
  };
  const load = async () => {
    try {
      data = await get("/workers");
      skew = data.now - Date.now() / 1000;
      if (!stopped) draw();
    } catch (error) { if (!stopped) failure(main, error); }
  };
  const reload = throttle(load, 2000);
  feed.listeners.add(reload);
  // Heartbeats are not job events: the page redraws the ages (and marks a worker lost
  // when its lease runs out) from the times it has, without asking the server.
  const ticker = setInterval(draw, 1000);
  load();
  return { stop() { stopped = true; clearInterval(ticker); } };
}

// Schedules --------------------------------------------------------------------------------

function schedulesView(main) {
  let stopped = false;
  const table = h("table", { id: "schedules" },
    h("thead", {}, h("tr", {}, ["schedule", "cron", "time zone", "job", "state", "next", "last", "last outcome", ""]
      .map((c) => h("th", {}, c)))),
    h("tbody"));
  const note = h("p", { id: "schedule-result", class: "muted" });
  main.append(h("h2", {}, "Schedules"), table, note,
    h("p", { class: "muted" }, "Declared in code; every server and worker fires them, one job per tick. A paused schedule skips the ticks that pass until it is resumed."));
  const act = async (name, action) => {
    try {
      await post(`/schedules/${encodeURIComponent(name)}/${action}`);
      note.replaceChildren(`${action === "pause" ? "Paused" : "Resumed"} ${name}.`);
      load();
    } catch (error) { note.replaceChildren(h("span", { class: "error" }, error.message)); }
  };
  const load = async () => {
    try {
      const data = await get("/schedules");
      if (stopped) return;
      table.tBodies[0].replaceChildren(...data.items.map((sch) => {
        const button = h("button", { type: "button", class: sch.paused ? "" : "danger", dataset: { action: sch.paused ? "resume" : "pause" } },
          sch.paused ? "Resume" : "Pause");
        button.addEventListener("click", () => act(sch.name, sch.paused ? "resume" : "pause"));
        const last = sch.last_job_id ? h("a", { href: `#/jobs/${sch.last_job_id}` }, time(Date.parse(sch.last_fire_at) / 1000)) : "—";
        return h("tr", { dataset: { name: sch.name } },
          h("td", {}, sch.name), h("td", {}, h("code", {}, sch.cron)), h("td", {}, sch.timezone), h("td", {}, sch.job),
          h("td", { class: "sched-state" }, sch.paused ? h("span", { class: "state cancelled" }, "paused") : h("span", { class: "state succeeded" }, "active")),
          h("td", { class: "next" }, sch.next_fire_at ? time(Date.parse(sch.next_fire_at) / 1000) : "—"),
          h("td", { class: "last" }, last),
          h("td", { class: "outcome" }, sch.last_outcome ? badge(sch.last_outcome) : "—"),
          h("td", {}, button));
      }));
      if (!data.items.length) table.tBodies[0].append(h("tr", {}, h("td", { colspan: 9, class: "muted" }, "No schedules declared.")));
    } catch (error) { if (!stopped) failure(main, error); }
  };
  // New ticks are new jobs: the feed tells the page when to look again.
  const reload = throttle(load, 1000);
  feed.listeners.add(reload);
  load();
  return { stop() { stopped = true; } };
}

// Workflow ---------------------------------------------------------------------------------

function workflowView(main, id) {
  let stopped = false;
  const note = h("span", { id: "workflow-result", class: "muted" });
  const cancel = async () => {
    if (!confirm("Cancel every step of this workflow not yet finished?")) return;
    try {
      await post(`/workflows/${encodeURIComponent(id)}/cancel`);
      note.replaceChildren("Cancelled.");
      load();
    } catch (error) { note.replaceChildren(h("span", { class: "error" }, error.message)); }
  };
  const draw = (wf) => {
    // Each step indented by its depth in the graph: how many steps come before it.
    const depth = {};
    for (const step of wf.steps) depth[step.name] = step.after.length ? 1 + Math.max(...step.after.map((a) => depth[a])) : 0;
    const counts = {};
    for (const step of wf.steps) counts[step.state] = (counts[step.state] || 0) + 1;
    main.replaceChildren(
      h("h2", {}, "Workflow ", h("span", { id: "workflow-state" }, badge(wf.state))),
      h("dl", { class: "facts" },
        fact("id", h("code", { id: "workflow-id" }, wf.id)),
        fact("created", time(Date.parse(wf.created_at) / 1000)),
        fact("steps", Object.entries(counts).map(([state, n]) => `${n} ${state}`).join(", "))),
      h("p", { class: "actions" },
        wf.state === "running" ? h("button", { id: "cancel-workflow", type: "button", class: "danger", onclick: cancel }, "Cancel workflow") : null,
        note),
      h("table", { id: "workflow-steps" },
        h("thead", {}, h("tr", {}, ["step", "job", "waits for", "state", ""].map((c) => h("th", {}, c)))),
        h("tbody", {}, wf.steps.map((step) => h("tr", { dataset: { step: step.name } },
          h("td", { style: `padding-left: ${0.5 + 1.5 * Math.min(depth[step.name], 12)}em` }, step.name),
          h("td", {}, step.job_id ? h("a", { href: `#/jobs/${step.job_id}` }, step.job) : step.job),
          h("td", { class: "muted" }, step.after.length > 6 ? `${step.after.length} steps` : step.after.join(", ") || "—"),
          h("td", { class: "step-state" }, badge(step.state)),
          h("td", { class: "muted" }, step.reason || "")))))
    );
  };
  const load = async () => {
    try {
      const wf = await get(`/workflows/${encodeURIComponent(id)}`);
      if (!stopped) draw(wf);
    } catch (error) { if (!stopped) failure(main, error); }
  };
  // Its steps are jobs: their events tell the page when to look again.
  const reload = throttle(load, 1000);
  feed.listeners.add(reload);
  load();
  return { stop() { stopped = true; } };
}

// -- start ---------------------------------------------------------------------------------

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  const signout = document.getElementById("signout");
  signout.addEventListener("click", async () => {
    await fetch(BASE + "/logout", { method: "POST", headers: { "X-Jobwire-CSRF": CSRF } });
    location.href = BASE + "/login";
  });
  startFeed();
  route();
});
