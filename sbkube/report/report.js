// sbkube report: filters, deep links, and each deployment's detail rendered on demand from
// the compressed chunks embedded in the page. Every recorded value goes into the DOM as
// text (textContent), never as markup.
(() => {
  "use strict";
  const data = JSON.parse(document.getElementById("sbkube-data").textContent);
  const chunks = new Map();
  const MARKS = { success: "✓", failed: "✗", partially_failed: "◐", rolled_back: "↶",
    interrupted: "‖", in_progress: "…", pending: "○", skipped: "–" };
  let mode = "unified";

  function loadChunk(n) {
    if (!chunks.has(n)) {
      chunks.set(n, (async () => {
        const bytes = Uint8Array.from(atob(data.chunks[n]), (c) => c.charCodeAt(0));
        // "deflate" in the Compression Streams spec is the zlib format Python writes.
        const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
        return JSON.parse(await new Response(stream).text());
      })());
    }
    return chunks.get(n);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, v);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const show = (v) => (v === null || v === undefined || v === "" ? "-" : String(v));
  const status = (s) => el("span", { class: `st st-${s}` }, `${MARKS[s] || "?"} ${s}`);
  const link = (id) => el("a", { href: `#${id}` }, id);

  function table(head, rows) {
    return el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) =>
        c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c)))))));
  }

  function seconds(a, b) {
    if (!a || !b) return "-";
    const s = (Date.parse(b) - Date.parse(a)) / 1000;
    return s < 60 ? `${s.toFixed(1)}s` : `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  }

  // A unified diff as lines (each keeps its +/- sign, so it reads without colour) or as
  // two columns, old left and new right, with line numbers from the hunk headers.
  function diffBlock(text) {
    const lines = text.replace(/\n$/, "").split("\n");
    if (mode === "unified") {
      return el("div", { class: "diff", role: "region", "aria-label": "diff" }, lines.map((l) => {
        const kind = l.startsWith("+++") || l.startsWith("---") ? "file"
          : l.startsWith("@@") ? "hunk" : l.startsWith("+") ? "add" : l.startsWith("-") ? "del" : "ctx";
        return el("div", { class: `l ${kind}` }, l);
      }));
    }
    const rows = [];
    let a = 0, b = 0, dels = [], adds = [];
    const flush = () => {
      for (let i = 0; i < Math.max(dels.length, adds.length); i++) {
        const d = dels[i], p = adds[i];
        rows.push(el("tr", {},
          el("td", { class: "n" }, d ? d[0] : ""), el("td", { class: d ? "del" : "" }, d ? `-${d[1]}` : ""),
          el("td", { class: "n" }, p ? p[0] : ""), el("td", { class: p ? "add" : "" }, p ? `+${p[1]}` : "")));
      }
      dels = []; adds = [];
    };
    for (const l of lines) {
      if (l.startsWith("+++") || l.startsWith("---")) {
        flush();
        rows.push(el("tr", { class: "file" }, el("td", { colspan: "4", class: "file" }, l)));
      } else if (l.startsWith("@@")) {
        flush();
        const m = /-(\d+)(?:,\d+)? \+(\d+)/.exec(l);
        if (m) { a = Number(m[1]); b = Number(m[2]); }
        rows.push(el("tr", {}, el("td", { colspan: "4", class: "hunk" }, l)));
      } else if (l.startsWith("-")) {
        dels.push([a++, l.slice(1)]);
      } else if (l.startsWith("+")) {
        adds.push([b++, l.slice(1)]);
      } else {
        flush();
        const t = l.slice(1);
        rows.push(el("tr", {}, el("td", { class: "n" }, a++), el("td", {}, ` ${t}`),
          el("td", { class: "n" }, b++), el("td", {}, ` ${t}`)));
      }
    }
    flush();
    return el("div", { class: "diff split", role: "region", "aria-label": "diff" },
      el("table", {}, el("tbody", {}, rows)));
  }

  function value(v) {
    return typeof v === "string" ? v : JSON.stringify(v);
  }

  function diffSection(d) {
    const box = el("div", { class: "changes-of" });
    if (!d.diff) {
      box.append(el("p", { class: "note" },
        "No earlier deployment of this target in the report: nothing to compare with."));
      return box;
    }
    const diff = d.diff;
    box.append(el("h5", {}, "Config snapshot"));
    box.append(diff.config_diff ? diffBlock(diff.config_diff) : el("p", { class: "note" }, "unchanged"));
    box.append(el("h5", {}, "Helm releases"));
    if (!diff.releases.length) box.append(el("p", { class: "note" }, "none"));
    for (const r of diff.releases) {
      const items = [];
      if (r.revision_a !== r.revision_b) items.push(["mod", `revision: ${show(r.revision_a)} -> ${show(r.revision_b)}`]);
      if (r.chart_a !== r.chart_b || r.chart_version_a !== r.chart_version_b) {
        items.push(["mod", `chart: ${show(r.chart_a)}-${show(r.chart_version_a)} -> ${show(r.chart_b)}-${show(r.chart_version_b)}`]);
      }
      for (const v of r.values) {
        const sign = v.change === "added" ? "+" : v.change === "removed" ? "-" : "~";
        const text = v.secret ? `(secret) ${v.change}`
          : v.change === "added" ? value(v.new) : v.change === "removed" ? value(v.old)
          : `${value(v.old)} -> ${value(v.new)}`;
        items.push([v.change === "added" ? "add" : v.change === "removed" ? "del" : "mod", `${sign} ${v.path}: ${text}`]);
      }
      for (const p of r.unchanged_secrets) items.push(["ctx", `= ${p}: (secret) unchanged`]);
      box.append(el("ul", { class: "changes" },
        el("li", {}, `${r.app}: release ${r.release_name} (namespace ${r.namespace}) ${r.change}`),
        items.map(([k, t]) => el("li", { class: `diff-${k}` }, el("span", { class: k === "add" ? "act-create" : k === "del" ? "act-delete" : k === "mod" ? "act-update" : "act-unchanged" }, t)))));
    }
    box.append(el("h5", {}, "Resources"));
    const manifests = [];
    for (const a of diff.resources) {
      const items = [
        ...a.added.map((r) => ["add", `+ ${label(r)}`]),
        ...a.removed.map((r) => ["del", `- ${label(r)}`]),
        ...a.changed.map((c) => ["mod", `~ ${label(c.resource)}`]),
      ];
      box.append(el("ul", { class: "changes" },
        el("li", {}, `${a.app}: ${a.added.length} added, ${a.removed.length} removed, ${a.changed.length} changed, ${a.unchanged} unchanged`),
        items.map(([k, t]) => el("li", { class: `res-${k}` }, el("span", { class: k === "add" ? "act-create" : k === "del" ? "act-delete" : "act-update" }, t)))));
      for (const c of a.changed) if (c.diff) manifests.push(c.diff);
    }
    box.append(el("h5", {}, "Manifest diffs"));
    if (!manifests.length) box.append(el("p", { class: "note" }, "none"));
    for (const m of manifests) box.append(diffBlock(m));
    return box;
  }

  function label(r) {
    return `${r.kind}/${r.namespace ? `${r.namespace}/` : ""}${r.name} (${r.api_version})`;
  }

  function renderDetail(d, row) {
    const meta = [
      ["Arguments", d.command_args.length ? d.command_args.join(" ") : "-"],
      ["App dir", show(d.app_dir)], ["Config file", show(d.config_file)],
      ["Host", show(d.host)], ["sbkube", show(d.sbkube_version)],
    ];
    if (d.error) meta.push(["Error", d.error]);
    const box = el("div", { class: "detail-body" },
      el("dl", {}, meta.map(([k, v]) => [el("dt", {}, k), el("dd", { class: k === "Error" ? "error" : "" }, v)])));
    box.append(el("h4", {}, `Apps (${d.apps.length})`));
    box.append(table(["App", "Type", "Namespace", "Status", "Resources", "Duration", "Error"],
      d.apps.map((a) => [a.name, a.type, show(a.namespace), status(a.status), a.resources.length,
        seconds(a.started_at, a.finished_at), show(a.error)])));
    const releases = d.apps.flatMap((a) => a.releases.map((h) => [a.name, h]));
    if (releases.length) {
      box.append(el("h4", {}, "Helm releases"));
      box.append(table(["App", "Release", "Namespace", "Chart", "Version", "App version", "Revision", "Status"],
        releases.map(([a, h]) => [a, h.release, h.namespace, h.chart, show(h.version), show(h.app_version), h.revision, h.status])));
    }
    const resources = d.apps.flatMap((a) => a.resources.map((r) => [a.name, ...r]));
    box.append(el("h4", {}, `Resources (${resources.length})`));
    box.append(table(["App", "Action", "Kind", "Namespace", "Name", "API version"],
      resources.map(([app, action, kind, ns, name, api]) =>
        [app, el("td", { class: `act-${action}` }, action), kind, show(ns), name, api])));
    const head = el("h4", {}, "Changes since ");
    head.append(d.previous ? link(d.previous) : "-");
    box.append(head);
    const changes = el("div", { class: "diffs" }, diffSection(d));
    box.append(changes);
    row._detail = d;
    row._changes = changes;
    return box;
  }

  async function toggle(row, open) {
    const button = row.querySelector("button.open");
    let next = row.nextElementSibling;
    const has = next && next.classList.contains("detail");
    if (open === undefined) open = !(has && !next.hidden);
    button.setAttribute("aria-expanded", String(open));
    if (!open) { if (has) next.hidden = true; return; }
    if (has) { next.hidden = false; return; }
    const cell = el("td", { colspan: String(row.cells.length) }, el("p", { class: "note" }, "Loading…"));
    next = el("tr", { class: "detail", "data-for": row.id }, cell);
    row.after(next);
    try {
      const chunk = await loadChunk(Number(row.dataset.chunk));
      cell.replaceChildren(renderDetail(chunk[row.id], row));
    } catch (err) {
      cell.replaceChildren(el("p", { class: "error" }, `Could not read this deployment's detail: ${err}`));
    }
  }

  function rerenderDiffs() {
    for (const row of document.querySelectorAll("tr.dep")) {
      if (row._detail) row._changes.replaceChildren(diffSection(row._detail));
    }
  }

  // Filters: every row, mark and table entry carries data-status/target/search.
  const q = document.getElementById("q");
  const st = document.getElementById("status");
  const tg = document.getElementById("target");
  function applyFilters() {
    const words = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    const keep = (n) => (!st.value || n.dataset.status === st.value)
      && (!tg.value || n.dataset.target === tg.value)
      && words.every((w) => n.dataset.search.includes(w));
    let shown = 0;
    for (const n of document.querySelectorAll("[data-search]")) {
      const ok = keep(n);
      n.classList.toggle("hidden", !ok);
      if (n.matches("tr.dep")) {
        shown += ok ? 1 : 0;
        const next = n.nextElementSibling;
        if (next && next.classList.contains("detail")) next.classList.toggle("hidden", !ok);
      }
    }
    for (const section of document.querySelectorAll("section.app, figure.timeline")) {
      section.classList.toggle("hidden", !section.querySelector("[data-search]:not(.hidden)"));
    }
    document.getElementById("shown").textContent =
      `${shown} of ${document.querySelectorAll("tr.dep").length} deployments shown`;
  }
  for (const input of [q, st, tg]) input.addEventListener("input", applyFilters);
  for (const radio of document.querySelectorAll("input[name=mode]")) {
    radio.addEventListener("change", () => { mode = radio.value; rerenderDiffs(); });
  }

  document.querySelector("table.deps").addEventListener("click", (ev) => {
    const button = ev.target.closest("button.open");
    if (button) toggle(button.closest("tr"));
  });

  // Deep links: #<deployment id> opens that deployment (clearing filters that hide it).
  async function followHash() {
    const id = decodeURIComponent(location.hash.slice(1));
    const row = id && document.getElementById(id);
    if (!row || !row.matches("tr.dep")) return;
    if (row.classList.contains("hidden")) { q.value = ""; st.value = ""; tg.value = ""; applyFilters(); }
    for (const r of document.querySelectorAll("tr.dep.current")) r.classList.remove("current");
    row.classList.add("current");
    await toggle(row, true);
    row.scrollIntoView({ block: "start" });
    row.querySelector("button.open").focus({ preventScroll: true });
  }
  window.addEventListener("hashchange", followHash);
  followHash();
})();
