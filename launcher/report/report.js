// Sample browser: renders only the current page, so 10,000 samples stay fast.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("samples-data").textContent);
  const PAGE = 50;
  const fields = data.fields; // column names of each sample row
  const col = Object.fromEntries(fields.map((f, i) => [f, i]));
  const jobSel = document.getElementById("job");
  const filterSel = document.getElementById("filter");
  const search = document.getElementById("search");
  const list = document.getElementById("samples");
  const count = document.getElementById("count");
  const prev = document.getElementById("prev");
  const next = document.getElementById("next");
  let page = 0;
  let shown = [];

  for (const job of data.jobs) {
    const opt = document.createElement("option");
    opt.value = job.job_id;
    opt.textContent = job.label + " (" + job.rows.length + ")";
    jobSel.appendChild(opt);
  }

  function wrong(row) {
    return row[col.correct] !== true;
  }

  function recompute() {
    const job = data.jobs.find((j) => j.job_id === jobSel.value) || data.jobs[0];
    const q = search.value.trim().toLowerCase();
    const mode = filterSel.value;
    shown = (job ? job.rows : []).filter((row) => {
      if (mode === "wrong" && !wrong(row)) return false;
      if (mode === "errors" && !row[col.error]) return false;
      if (!q) return true;
      return ["id", "prompt", "response", "extracted", "reference"].some((f) =>
        String(row[col[f]] ?? "").toLowerCase().includes(q));
    });
    page = 0;
    render();
  }

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

  function render() {
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    page = Math.min(page, pages - 1);
    count.textContent = shown.length + " samples, page " + (page + 1) + " of " + pages;
    count.dataset.count = String(shown.length);
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    const frag = document.createDocumentFragment();
    for (const row of shown.slice(page * PAGE, (page + 1) * PAGE)) {
      const box = document.createElement("div");
      box.className = "sample " + (wrong(row) ? "wrong" : "right");
      const head = document.createElement("div");
      const verdict = row[col.error] ? "error: " + row[col.error] : (wrong(row) ? "wrong" : "correct");
      head.textContent = "#" + row[col.id] + " · score " + row[col.score] + " · " + verdict;
      box.appendChild(head);
      const d = document.createElement("details");
      const s = document.createElement("summary");
      s.textContent = "prompt";
      d.appendChild(s);
      d.appendChild(field("prompt", row[col.prompt]));
      box.appendChild(d);
      box.appendChild(field("response", row[col.response]));
      box.appendChild(field("extracted", row[col.extracted]));
      box.appendChild(field("reference", row[col.reference]));
      frag.appendChild(box);
    }
    list.replaceChildren(frag);
  }

  jobSel.addEventListener("change", recompute);
  filterSel.addEventListener("change", recompute);
  let timer = null;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(recompute, 150); });
  prev.addEventListener("click", () => { page -= 1; render(); });
  next.addEventListener("click", () => { page += 1; render(); });
  // Tests and links can preselect: report.html#filter=wrong&job=<job id>&q=<text>
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("job")) jobSel.value = hash.get("job");
  if (hash.get("filter")) filterSel.value = hash.get("filter");
  if (hash.get("q")) search.value = hash.get("q");
  recompute();
  document.body.dataset.ready = "1";
})();
