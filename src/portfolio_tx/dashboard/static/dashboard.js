// The desk page: follows /events (server-sent events) and draws one card per session.
// "snapshot" (on every connect) redraws everything; "outcome" updates one session.
// Every value from the server is set with textContent: session ids and reasons are data.
"use strict";

(function () {
  const MAX_RECENT = 50;
  const sessions = new Map(); // session_id -> {card, plot, xs, ys, ds, view}
  const totals = { commits: 0, discards: 0 };

  const $ = (selector, root = document) => root.querySelector(selector);
  const num = (v) => (v === null || v === undefined ? NaN : Number(v));
  const money = (v) =>
    Number.isFinite(num(v))
      ? num(v).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })
      : "—";
  const signed = (v) => (num(v) > 0 ? "+" : "") + money(v);
  const qty = (v) => num(v).toLocaleString("en-US", { maximumFractionDigits: 8 });
  const compact = (v) =>
    v === null ? "" : v.toLocaleString("en-US", { notation: "compact", maximumFractionDigits: 2 });
  const clock = (ms) => new Date(ms).toISOString().slice(11, 19);
  // x ticks in UTC like the table; seconds only when ticks are closer than a minute,
  // the date when they are a day or more apart
  const utcTick = (s, step) => {
    const iso = new Date(s * 1000).toISOString();
    if (step >= 86400) return iso.slice(5, 10);
    return step < 60 ? iso.slice(11, 19) : iso.slice(11, 16);
  };
  const deltaText = (e) => `Δ ${signed(e.delta)} · ε ${money(e.epsilon)}`;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  // -- one session card --------------------------------------------------------------------

  function makePlot(target) {
    const width = Math.max(target.clientWidth, 300);
    const opts = {
      width,
      height: 170,
      padding: [10, 28, 0, 0], // room for the last time label
      legend: { show: false },
      cursor: { points: { size: 7 } },
      scales: { x: { time: true } },
      axes: [
        {
          stroke: "#8a96a8",
          space: 70,
          grid: { stroke: "#202838", width: 1 },
          ticks: { stroke: "#263041" },
          values: (u, splits, axis, space, step) => splits.map((s) => utcTick(s, step)),
        },
        {
          stroke: "#8a96a8",
          size: 64,
          grid: { stroke: "#202838", width: 1 },
          ticks: { stroke: "#263041" },
          values: (u, values) => values.map(compact),
        },
      ],
      series: [
        {},
        {
          label: "Equity",
          stroke: "#4cc2ff",
          width: 2,
          fill: "rgba(76, 194, 255, 0.08)",
          points: { show: true, size: 5, fill: "#4cc2ff" },
        },
        {
          label: "Discard",
          stroke: "#ff5f5f",
          width: 0,
          paths: () => null,
          points: { show: true, size: 11, width: 2, stroke: "#ff5f5f", fill: "#ff5f5f" },
        },
      ],
    };
    return new uPlot(opts, [[], [], []], target);
  }

  function cardFor(sessionId) {
    let entry = sessions.get(sessionId);
    if (entry) return entry;
    const card = $("#session-template").content.firstElementChild.cloneNode(true);
    card.dataset.session = sessionId;
    $(".name", card).textContent = sessionId;
    insertSorted(card, sessionId);
    entry = { card, xs: [], ys: [], ds: [], plot: makePlot($(".chart", card)) };
    new ResizeObserver(() => {
      const width = $(".chart", card).clientWidth;
      if (width > 0) entry.plot.setSize({ width, height: 170 });
    }).observe($(".chart", card));
    sessions.set(sessionId, entry);
    $("#empty").hidden = true;
    return entry;
  }

  function insertSorted(card, sessionId) {
    const grid = $("#sessions");
    const after = [...grid.children].find((c) => c.dataset.session > sessionId);
    grid.insertBefore(card, after || null);
  }

  function addPoint(entry, ts, equity, discarded) {
    entry.xs.push(ts / 1000);
    entry.ys.push(num(equity));
    entry.ds.push(discarded ? num(equity) : null);
  }

  function drawCard(entry, last, discards) {
    const { card } = entry;
    const isDiscard = last.outcome === "DISCARD";
    card.dataset.outcome = last.outcome;
    card.classList.toggle("last-discard", isDiscard);

    const badge = $(".badge", card);
    badge.className = "badge " + (isDiscard ? "discard" : "commit");
    badge.textContent = `${last.outcome} · cycle ${last.cycle_id}`;

    const banner = $(".discard-banner", card);
    banner.hidden = !isDiscard;
    banner.replaceChildren();
    if (isDiscard) {
      banner.append(el("strong", `DISCARD ${last.reason}`), ` · cycle ${last.cycle_id} · ${deltaText(last)}`);
    }

    $(".equity", card).textContent = money(last.equity);
    const first = entry.ys.find((y) => Number.isFinite(y));
    const change = $(".change", card);
    if (first !== undefined && entry.ys.length > 1) {
      const diff = num(last.equity) - first;
      change.textContent = `${signed(diff)} since first`;
      change.className = "change " + (diff >= 0 ? "up" : "down");
    } else {
      change.textContent = "";
    }
    $(".cash", card).textContent = money(last.cash);
    const realized = $(".realized", card);
    realized.textContent = signed(last.realized_pnl);
    realized.className = "realized " + (num(last.realized_pnl) < 0 ? "down" : "up");
    $(".fees", card).textContent = money(last.fees);
    $(".residual", card).textContent = last.residual === null ? "—" : signed(last.residual);

    const rows = $(".positions tbody", card);
    rows.replaceChildren();
    if (last.positions.length === 0) {
      const row = el("tr");
      const cell = el("td", "flat — no open positions", "flat");
      cell.colSpan = 5;
      row.append(cell);
      rows.append(row);
    }
    for (const p of last.positions) {
      const row = el("tr");
      const value = p.mark_price === null ? null : num(p.quantity) * num(p.mark_price);
      row.append(
        el("td", p.symbol),
        el("td", qty(p.quantity), "num " + (num(p.quantity) < 0 ? "down" : "")),
        el("td", money(p.avg_entry_price), "num"),
        el("td", money(p.mark_price), "num"),
        el("td", money(value), "num"),
      );
      rows.append(row);
    }

    const box = $(".discards", card);
    box.hidden = discards.length === 0;
    const list = $("ul", box);
    list.replaceChildren();
    for (const d of discards.slice(0, 5)) {
      const item = el("li", null, "discard");
      item.append(`cycle ${d.cycle_id} `, el("span", d.reason, "reason"), ` · ${deltaText(d)}`);
      list.append(item);
    }
    entry.plot.setData([entry.xs, entry.ys, entry.ds]);
  }

  // -- the outcome feed and totals --------------------------------------------------------

  function recentRow(e, fresh) {
    const row = el("tr", null, (e.outcome === "DISCARD" ? "discard" : "commit") + (fresh ? " fresh" : ""));
    row.dataset.session = e.session_id;
    row.append(
      el("td", clock(e.ts)),
      el("td", e.session_id),
      el("td", String(e.cycle_id), "num"),
      el("td", e.outcome, "kind " + e.outcome.toLowerCase()),
      el("td", e.reason || "", "reason"),
      el("td", money(e.equity), "num"),
      el("td", signed(e.delta), "num"),
      el("td", money(e.epsilon), "num"),
    );
    return row;
  }

  function drawTotals() {
    let equity = 0;
    for (const entry of sessions.values()) equity += num(entry.last.equity);
    $("#total-sessions").textContent = String(sessions.size);
    $("#total-equity").textContent = sessions.size ? money(equity) : "—";
    $("#total-commits").textContent = String(totals.commits);
    $("#total-discards").textContent = String(totals.discards);
  }

  // -- events ------------------------------------------------------------------------------

  function onSnapshot(snapshot) {
    for (const entry of sessions.values()) entry.plot.destroy();
    sessions.clear();
    $("#sessions").replaceChildren();
    totals.commits = 0;
    totals.discards = 0;
    for (const view of snapshot.sessions) {
      const entry = cardFor(view.session_id);
      for (const [ts, equity, discarded] of view.equity) addPoint(entry, ts, equity, discarded);
      entry.last = view.last;
      entry.discards = view.recent_discards;
      totals.commits += view.commits;
      totals.discards += view.discards;
      drawCard(entry, view.last, entry.discards);
    }
    const body = $("#recent tbody");
    body.replaceChildren(...snapshot.recent.map((e) => recentRow(e, false)));
    $("#empty").hidden = sessions.size > 0;
    drawTotals();
  }

  function onOutcome(e) {
    const entry = cardFor(e.session_id);
    addPoint(entry, e.ts, e.equity, e.outcome === "DISCARD");
    entry.last = e;
    entry.discards = entry.discards || [];
    if (e.outcome === "DISCARD") {
      entry.discards.unshift(e);
      totals.discards += 1;
    } else {
      totals.commits += 1;
    }
    drawCard(entry, e, entry.discards);
    const body = $("#recent tbody");
    body.insertBefore(recentRow(e, true), body.firstChild);
    while (body.children.length > MAX_RECENT) body.lastChild.remove();
    drawTotals();
  }

  function setStatus(kind, text) {
    const status = $("#status");
    status.className = "status " + kind;
    status.textContent = text;
  }

  const source = new EventSource("/events");
  source.onopen = () => setStatus("live", "live");
  source.onerror = () => setStatus("connecting", "reconnecting…");
  source.addEventListener("snapshot", (m) => {
    onSnapshot(JSON.parse(m.data));
    setStatus("live", "live");
  });
  source.addEventListener("outcome", (m) => {
    onOutcome(JSON.parse(m.data));
    setStatus("live", "live · last " + clock(Date.now()));
  });
})();
