/* github-sync status dashboard.
 *
 * Reads the JSON API of the plugin (same origin: Airflow's session cookie authenticates
 * every fetch and the EventSource) and follows running syncs through /stream.
 * The owner selector re-queries every owner-aware route with ?owner= and keeps the
 * choice in the page's own query string, so a link opens the same view.
 * Everything user-controlled (repository names, errors) goes through textContent, never
 * innerHTML.
 */
"use strict";

(function () {
  const BASE = document.body.dataset.base;
  const AIRFLOW_BASE = document.body.dataset.airflowBase;
  const MODES = ["full", "incremental", "repository", "webhook"];
  const HISTORY_PAGE = 15;
  const CHART_RUNS = 50;
  // A finished run stays visible in the live panel briefly so its 100 % is seen.
  const FINISHED_LINGER_MS = 20000;
  // Refreshing after a run ends lets its import_logs row (written by the DAG callback) land.
  const REFRESH_DELAY_MS = 2500;
  const FALLBACK_REFRESH_MS = 60000;
  // A GitHub login, the rule the API enforces (an invalid ?owner= in the URL is ignored).
  const LOGIN = /^[A-Za-z0-9][A-Za-z0-9-]{0,38}$/;

  function ownerFromUrl() {
    const value = new URLSearchParams(window.location.search).get("owner");
    return value && LOGIN.test(value) ? value : "";
  }

  const state = { days: 30, owner: ownerFromUrl(), offset: 0, total: 0, charts: {}, live: new Map(),
    refresh: 0, ownersKey: null, stream: null };

  // The path with the selected owner's filter (routes without one are called without it).
  function withOwner(path) {
    if (!state.owner) return path;
    return `${path}${path.includes("?") ? "&" : "?"}owner=${encodeURIComponent(state.owner)}`;
  }

  // ---- helpers -------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "style") node.setAttribute("style", value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const numberFormat = new Intl.NumberFormat();
  const fmtInt = (n) => (n === null || n === undefined ? "–" : numberFormat.format(n));
  const fmtPct = (r, digits = 1) => (r === null || r === undefined ? "–" : `${(r * 100).toFixed(digits)} %`);

  // "acme/api (shard 3/40: 250 repositories)": which repository each shard is on.
  function nowSyncing(run) {
    const shardOf = new Map((run.current_shards || []).map((p) => [p.repository, p.shard]));
    return run.current_repositories
      .map((name) => (shardOf.has(name) ? `${name} (${shardOf.get(name)})` : name))
      .join(", ");
  }

function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.round(seconds);
    if (s < 60) return `${seconds < 10 ? Number(seconds).toFixed(1) : s} s`;
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h ? `${h} h ${String(m).padStart(2, "0")} m` : `${m} m ${String(r).padStart(2, "0")} s`;
  }

  function fmtAgo(iso) {
    if (!iso) return "never";
    const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
    if (seconds < 60) return "just now";
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return `${Math.floor(seconds / 86400)} d ago`;
  }

  const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString([], {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }) : "–");

  const modeColor = (mode) => getComputedStyle(document.documentElement).getPropertyValue(`--${mode}`).trim() || "#718096";

  function gridLink(gridPath, text, cls) {
    if (!gridPath) return document.createTextNode(text);
    // target=_top: inside Airflow's plugin frame, open the grid in the UI itself.
    return el("a", { href: AIRFLOW_BASE + gridPath, target: "_top", class: cls || "run-link", title: "Open in the Airflow grid" }, text);
  }

  const badge = (value) => el("span", { class: `badge ${value || "none"}`, text: value || "none" });

  async function getJSON(path) {
    const response = await fetch(BASE + path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) {
      const detail = await response.text();
      throw new Error(`${path}: HTTP ${response.status} ${detail.slice(0, 200)}`);
    }
    return response.json();
  }

  function showError(error) {
    const banner = document.getElementById("load-error");
    if (error) {
      banner.textContent = `Could not load the status data (${error.message}).`;
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  }

  function fillTable(id, rows, emptyText, columns) {
    const body = document.querySelector(`#${id} tbody`);
    body.replaceChildren();
    if (!rows.length) {
      body.append(el("tr", {}, el("td", { colspan: columns, class: "empty", text: emptyText })));
      return;
    }
    rows.forEach((row) => body.append(row));
  }

  // ---- statistics ----------------------------------------------------------------------
  function renderStats(stats, budget) {
    const o = stats.overall;
    document.getElementById("kpi-success-rate").textContent = fmtPct(o.success_rate);
    document.getElementById("kpi-success-sub").textContent = `${fmtInt(o.failed)} failed in ${stats.window_days} days`;
    document.getElementById("kpi-runs").textContent = fmtInt(o.runs);
    document.getElementById("kpi-runs-sub").textContent = `${fmtInt(o.succeeded)} succeeded`;
    document.getElementById("kpi-records").textContent = fmtInt(o.records_imported);
    document.getElementById("kpi-records-sub").textContent = o.records_failed ? `${fmtInt(o.records_failed)} failed` : "none failed";
    document.getElementById("kpi-requests").textContent = fmtInt(o.requests);
    document.getElementById("kpi-requests-sub").textContent = `${fmtPct(o.not_modified_share)} answered 304 · ${fmtInt(o.budget_spent)} counted`;
    document.getElementById("kpi-budget").textContent = fmtInt(budget.remaining);
    document.getElementById("kpi-budget-sub").textContent = budget.observed_at
      ? `seen ${fmtAgo(budget.observed_at)} · ${fmtInt(budget.spent_last_hour)} spent in the last hour`
      : "no observation yet";

    const container = document.getElementById("modes");
    container.replaceChildren();
    for (const mode of MODES) {
      const m = stats.modes[mode];
      if (!m) continue;
      const last = m.last_sync;
      const success = m.last_success;
      const card = el("div", { class: "card mode-card", "data-mode": mode, style: `--mode-color: var(--${mode})` },
        el("div", { class: "mode-name" }, el("span", { text: mode }), badge(last ? last.state : null)),
        el("div", { class: "when", "data-role": "last-sync" }, last ? fmtAgo(last.timestamp) : "never"),
        el("div", { class: "muted" }, last ? gridLink(last.grid_path, fmtTime(last.timestamp)) : "no run logged"),
        el("dl", {},
          el("dt", { text: "Last success" }), el("dd", { "data-role": "last-success" }, success ? gridLink(success.grid_path, fmtAgo(success.timestamp)) : "never"),
          el("dt", { text: "Success rate" }), el("dd", { "data-role": "success-rate", text: fmtPct(m.success_rate) }),
          el("dt", { text: "Runs" }), el("dd", { text: `${fmtInt(m.runs)} (${fmtInt(m.failed)} failed)` }),
          el("dt", { text: "Avg / p95" }), el("dd", { text: `${fmtDuration(m.avg_duration_s)} / ${fmtDuration(m.p95_duration_s)}` }),
          el("dt", { text: "Records" }), el("dd", { text: fmtInt(m.records_imported) }),
          el("dt", { text: "304 share" }), el("dd", { text: fmtPct(m.not_modified_share) })));
      container.append(card);
    }
  }

  // ---- charts --------------------------------------------------------------------------
  function chartDefaults() {
    const text = getComputedStyle(document.body).color;
    const grid = getComputedStyle(document.documentElement).getPropertyValue("--border").trim();
    return { text, grid };
  }

  function drawCharts(runs) {
    if (!window.Chart) return;
    const ordered = runs.slice().reverse();
    const labels = ordered.map((r) => fmtTime(r.timestamp));
    const { text, grid } = chartDefaults();
    const axis = (title, extra) => ({ ...extra, title: { display: true, text: title, color: text },
      ticks: { color: text }, grid: { color: grid } });
    const common = {
      responsive: true, maintainAspectRatio: false, animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { labels: { color: text, boxWidth: 12 } } },
    };

    const durationData = {
      labels,
      datasets: [
        { type: "bar", label: "Duration", data: ordered.map((r) => r.duration_s), yAxisID: "y",
          backgroundColor: ordered.map((r) => (r.state === "failed" ? "#e53e3e" : modeColor(r.mode))), borderRadius: 3 },
        { type: "line", label: "Records imported", data: ordered.map((r) => r.records_imported), yAxisID: "y1",
          borderColor: "#d69e2e", backgroundColor: "#d69e2e", tension: 0.25, pointRadius: 2 },
      ],
    };
    const durationOptions = { ...common,
      scales: { x: axis("", { ticks: { color: text, maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } }),
        // Webhook runs take seconds, full runs many minutes: a log axis keeps both readable.
        y: axis("duration (s)", { type: "logarithmic", position: "left" }),
        y1: axis("records", { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } }) },
      plugins: { ...common.plugins, tooltip: { callbacks: {
        title: (items) => { const r = ordered[items[0].dataIndex]; return `${r.mode} · ${r.state} · ${fmtTime(r.timestamp)}`; },
        label: (item) => (item.datasetIndex === 0 ? `Duration: ${fmtDuration(item.raw)}` : `Records: ${fmtInt(item.raw)}`),
      } } } };

    const budgetData = {
      labels,
      datasets: [
        { type: "bar", label: "Budget spent", data: ordered.map((r) => r.budget_spent), stack: "req", yAxisID: "y",
          backgroundColor: "#017cee", borderRadius: 2 },
        { type: "bar", label: "304 (free)", data: ordered.map((r) => r.not_modified), stack: "req", yAxisID: "y",
          backgroundColor: "#90cdf4", borderRadius: 2 },
        { type: "line", label: "Remaining after run", data: ordered.map((r) => r.rate_limit_remaining), yAxisID: "y1",
          borderColor: "#38a169", backgroundColor: "#38a169", tension: 0.25, pointRadius: 2, spanGaps: true },
      ],
    };
    const budgetOptions = { ...common,
      scales: { x: axis("", { stacked: true, ticks: { color: text, maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } }),
        y: axis("requests", { stacked: true, beginAtZero: true }),
        y1: axis("remaining", { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } }) } };

    for (const [id, data, options] of [["chart-durations", durationData, durationOptions], ["chart-budget", budgetData, budgetOptions]]) {
      if (state.charts[id]) state.charts[id].destroy();
      state.charts[id] = new window.Chart(document.getElementById(id), { data, options });
    }
  }

  // ---- tables --------------------------------------------------------------------------
  function renderRepositories(repos) {
    document.getElementById("repos-window").textContent = `last ${repos.window_days} days`;
    fillTable("slowest", repos.slowest.map((r) => el("tr", {},
      el("td", { text: r.repository }), el("td", { class: "num", text: fmtInt(r.runs) }),
      el("td", { class: "num", text: fmtDuration(r.avg_duration_s) }), el("td", { class: "num", text: fmtDuration(r.max_duration_s) }),
      el("td", { class: "num", text: r.avg_requests === null ? "–" : r.avg_requests.toFixed(1) }))), "No finished repository yet.", 5);
    fillTable("failing", repos.failing.map((r) => el("tr", {},
      el("td", { text: r.repository }), el("td", { class: "num", text: `${fmtInt(r.failures)} / ${fmtInt(r.runs)}` }),
      el("td", { class: "error-text", title: r.last_error || "", text: r.last_error || "–" }),
      el("td", {}, gridLink(r.grid_path, fmtTime(r.last_failed_at), "plain-link")))), "No repository failed in this window.", 4);
  }

  function renderHistory(page) {
    state.total = page.total;
    fillTable("history", page.items.map((r) => {
      const repos = r.repositories || {};
      const share = r.requests ? r.not_modified / r.requests : null;
      return el("tr", { "data-run-id": r.run_id },
        el("td", { text: fmtTime(r.timestamp) }),
        el("td", {}, el("span", { class: "mode-tag", style: `--mode-color: var(--${r.mode})`, text: r.mode || "?" })),
        el("td", { class: "owners", text: (r.owners || []).join(", ") || "–" }),
        el("td", {}, badge(r.state)),
        el("td", {}, gridLink(r.grid_path, r.run_id || "?")),
        el("td", { class: "num", text: fmtDuration(r.duration_s) }),
        el("td", { class: "num", text: `${fmtInt(repos.ok)} / ${fmtInt(repos.failed)}` }),
        el("td", { class: "num", text: fmtInt(r.records_imported) }),
        el("td", { class: "num", text: fmtInt(r.requests) }),
        el("td", { class: "num", text: fmtPct(share, 0) }),
        el("td", { class: "num", text: fmtInt(r.rate_limit_remaining) }));
    }), state.owner ? `No run of ${state.owner} logged yet.` : "No run logged yet.", 11);
    const from = page.total ? page.offset + 1 : 0;
    const to = Math.min(page.offset + page.items.length, page.total);
    document.getElementById("page-info").textContent = `${from}–${to} of ${fmtInt(page.total)}`;
    document.getElementById("prev").disabled = page.offset === 0;
    document.getElementById("next").disabled = page.offset + HISTORY_PAGE >= page.total;
  }

  // ---- owner selector ------------------------------------------------------------------
  function renderOwners(owners) {
    const select = document.getElementById("owner");
    const listed = owners.map((o) => o.owner);
    const wanted = state.owner.toLowerCase();
    // A linked owner the API does not list (yet) stays selectable: the view matches the link.
    if (state.owner && !listed.some((o) => o.toLowerCase() === wanted)) listed.push(state.owner);
    const key = JSON.stringify(owners) + "|" + state.owner;
    if (key !== state.ownersKey) {
      state.ownersKey = key;
      const counts = new Map(owners.map((o) => [o.owner, o.repositories]));
      select.replaceChildren(el("option", { value: "", text: "All owners" }),
        ...listed.map((o) => el("option", { value: o,
          text: counts.has(o) ? `${o} (${fmtInt(counts.get(o))} repos)` : o })));
    }
    select.value = listed.find((o) => o.toLowerCase() === wanted) || "";
  }

  function selectOwner(owner) {
    state.owner = owner;
    state.offset = 0;
    const url = new URL(window.location.href);
    if (owner) url.searchParams.set("owner", owner);
    else url.searchParams.delete("owner");
    window.history.replaceState(null, "", url);
    // Runs of the previous selection leave the live panel; the stream follows the new one.
    state.live.clear();
    renderLive();
    connectStream();
    refreshAll();
  }

  // ---- live progress -------------------------------------------------------------------
  function renderLive() {
    const container = document.getElementById("live-runs");
    container.replaceChildren();
    if (!state.live.size) {
      container.append(el("p", { class: "empty", id: "live-empty", text: "No sync is running." }));
      return;
    }
    for (const run of state.live.values()) {
      const pct = run.percent === null || run.percent === undefined ? 0 : run.percent;
      const finished = run.state !== "running";
      const eta = finished ? (run.state === "success" ? "done" : "failed") : (run.eta_s === null ? "estimating…" : fmtDuration(run.eta_s));
      const node = el("div", { class: `live-run ${finished ? "finished " + run.state : ""}`, "data-run-id": run.run_id, "data-percent": String(pct) },
        el("div", { class: "live-title" },
          el("span", {}, el("span", { class: "mode-tag", style: `--mode-color: var(--${run.mode})`, text: run.mode }), "  ",
            gridLink(run.grid_path, run.run_id)),
          badge(run.state)),
        el("div", { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(pct)) },
          el("div", { class: "progress-fill", style: `width: ${pct}%` })),
        el("div", { class: "live-stats" },
          el("span", {}, el("b", { class: "live-done", text: `${fmtInt(run.done)} / ${fmtInt(run.total)}` }), " repositories"),
          el("span", {}, el("b", { text: `${pct.toFixed(0)} %` })),
          el("span", {}, "failed ", el("b", { text: fmtInt(run.failed) })),
          el("span", {}, "records ", el("b", { text: fmtInt(run.records) })),
          el("span", {}, "elapsed ", el("b", { text: fmtDuration(run.elapsed_s) })),
          el("span", {}, "ETA ", el("b", { class: "live-eta", text: eta })),
          el("span", {}, "rate ", el("b", { text: run.rate_per_min ? `${run.rate_per_min.toFixed(1)}/min` : "–" }))),
        run.current_repositories && run.current_repositories.length && !finished
          ? el("div", { class: "live-current", text: `Now: ${nowSyncing(run)}` }) : null);
      container.append(node);
    }
    document.getElementById("live-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  function upsertLive(run) {
    state.live.set(`${run.dag_id}/${run.run_id}`, run);
    renderLive();
  }

  function finishLive(run) {
    upsertLive(run);
    setTimeout(() => { state.live.delete(`${run.dag_id}/${run.run_id}`); renderLive(); }, FINISHED_LINGER_MS);
    setTimeout(refreshAll, REFRESH_DELAY_MS);
  }

  function setStreamStatus(kind, label) {
    const badgeNode = document.getElementById("stream-status");
    badgeNode.dataset.state = kind;
    badgeNode.querySelector(".label").textContent = label;
  }

  function connectStream() {
    if (!window.EventSource) return;
    if (state.stream) state.stream.close();
    setStreamStatus("connecting", "connecting");
    const source = new EventSource(BASE + withOwner("/stream"), { withCredentials: true });
    state.stream = source;
    source.onopen = () => setStreamStatus("live", "live");
    source.onerror = () => setStreamStatus("error", "reconnecting");
    source.addEventListener("sync:start", (e) => upsertLive(JSON.parse(e.data)));
    source.addEventListener("sync:progress", (e) => upsertLive(JSON.parse(e.data)));
    source.addEventListener("sync:complete", (e) => finishLive(JSON.parse(e.data)));
    source.addEventListener("sync:error", (e) => finishLive(JSON.parse(e.data)));
  }

  // ---- loading -------------------------------------------------------------------------
  async function loadHistory() {
    const owner = state.owner;
    const page = await getJSON(withOwner(`/api/history?limit=${HISTORY_PAGE}&offset=${state.offset}`));
    if (owner === state.owner) renderHistory(page);
  }

  async function refreshAll() {
    // Only the latest refresh renders: an older one (another owner or window) is dropped.
    const refresh = ++state.refresh;
    const owner = state.owner;
    try {
      const [owners, stats, budget, chartRuns, repos, progress] = await Promise.all([
        getJSON("/api/owners"), getJSON(withOwner(`/api/stats?days=${state.days}`)), getJSON("/api/rate-limit"),
        getJSON(withOwner(`/api/history?limit=${CHART_RUNS}`)), getJSON(withOwner(`/api/repositories?days=${state.days}`)),
        getJSON(withOwner("/api/progress"))]);
      if (refresh !== state.refresh) return;
      renderOwners(owners.owners);
      renderStats(stats, budget);
      drawCharts(chartRuns.items);
      renderRepositories(repos);
      for (const run of progress.runs) {
        if (!state.live.has(`${run.dag_id}/${run.run_id}`)) upsertLive(run);
      }
      await loadHistory();
      if (refresh !== state.refresh) return;
      showError(null);
      document.body.dataset.owner = owner;
      document.body.dataset.loaded = "true";
    } catch (error) {
      if (refresh === state.refresh) showError(error);
    }
  }

  document.getElementById("owner").addEventListener("change", (e) => selectOwner(e.target.value));
  document.getElementById("window-days").addEventListener("change", (e) => { state.days = Number(e.target.value); refreshAll(); });
  document.getElementById("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - HISTORY_PAGE); loadHistory().catch(showError); });
  document.getElementById("next").addEventListener("click", () => { state.offset += HISTORY_PAGE; loadHistory().catch(showError); });

  renderOwners([]); // a linked owner shows as selected before the list arrives
  refreshAll();
  connectStream();
  setInterval(refreshAll, FALLBACK_REFRESH_MS);
})();
