// The paged browser shared by the report's sample browser and the comparison page's flip browser: rows
// travel as JSON and only the current page is rendered, so 10,000 rows open and filter instantly.
"use strict";
function field(label, text) {
  const div = document.createElement("div");
  div.className = "field";
  const b = document.createElement("span");
  b.className = "label";
  b.textContent = label + ": ";
  div.appendChild(b);
  const pre = document.createElement("pre");
  pre.textContent = text === null || text === undefined ? "" : String(text);
  div.appendChild(pre);
  return div;
}

// A collapsed prompt: long, and the same in every view of the item.
function promptDetails(text) {
  const d = document.createElement("details");
  const s = document.createElement("summary");
  s.textContent = "prompt";
  d.appendChild(s);
  d.appendChild(field("prompt", text));
  return d;
}

// o: groups [{name, label, rows}], the ids of the group and mode selects, keep(row, mode, query) -> bool,
// render(row) -> Element, noun ("samples"), and the URL-hash keys that preselect group, mode and query.
function pagedBrowser(o) {
  const PAGE = 50;
  const el = (id) => document.getElementById(id);
  const groupSel = el(o.groupSelect), modeSel = el(o.modeSelect), search = el("search");
  const list = el(o.list), count = el("count"), prev = el("prev"), next = el("next");
  let page = 0;
  let shown = [];
  for (const g of o.groups) {
    const opt = document.createElement("option");
    opt.value = g.name;
    opt.textContent = g.label;
    groupSel.appendChild(opt);
  }

  function recompute() {
    const group = o.groups.find((g) => g.name === groupSel.value) || o.groups[0];
    const q = search.value.trim().toLowerCase();
    shown = (group ? group.rows : []).filter((row) => o.keep(row, modeSel.value, q));
    page = 0;
    render();
  }

  function render() {
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    page = Math.min(page, pages - 1);
    count.textContent = shown.length + " " + o.noun + ", page " + (page + 1) + " of " + pages;
    count.dataset.count = String(shown.length);
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    const frag = document.createDocumentFragment();
    for (const row of shown.slice(page * PAGE, (page + 1) * PAGE)) frag.appendChild(o.render(row));
    list.replaceChildren(frag);
  }

  groupSel.addEventListener("change", recompute);
  modeSel.addEventListener("change", recompute);
  let timer = null;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(recompute, 150); });
  prev.addEventListener("click", () => { page -= 1; render(); });
  next.addEventListener("click", () => { page += 1; render(); });
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get(o.hashGroup)) groupSel.value = hash.get(o.hashGroup);
  if (hash.get(o.hashMode)) modeSel.value = hash.get(o.hashMode);
  if (hash.get("q")) search.value = hash.get("q");
  recompute();
  document.body.dataset.ready = "1";
}
