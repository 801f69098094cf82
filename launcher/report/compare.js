// The comparison page's flip browser (browser.js pages it): BASE and CAND responses side by side.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("flips-data").textContent);
  const col = Object.fromEntries(data.fields.map((f, i) => [f, i]));
  const SEARCHED = ["id", "prompt", "reference", "base_response", "cand_response", "base_extracted", "cand_extracted"];

  function keep(row, kind, q) {
    if (kind !== "all" && row[col.kind] !== kind) return false;
    return !q || SEARCHED.some((f) => String(row[col[f]] ?? "").toLowerCase().includes(q));
  }

  function side(name, row, prefix) {
    const div = document.createElement("div");
    div.className = "side " + prefix;
    const h = document.createElement("div");
    h.className = "label";
    h.textContent = name + " · score " + row[col[prefix]];
    div.appendChild(h);
    div.appendChild(field("response", row[col[prefix + "_response"]]));
    div.appendChild(field("extracted", row[col[prefix + "_extracted"]]));
    return div;
  }

  function render(row) {
    const box = document.createElement("div");
    box.className = "sample " + row[col.kind];
    const head = document.createElement("div");
    head.textContent = "#" + row[col.id] + " · " + row[col.kind] + " · " + row[col.base] + " → " + row[col.cand];
    box.appendChild(head);
    box.appendChild(promptDetails(row[col.prompt]));
    box.appendChild(field("reference", row[col.reference]));
    const pair = document.createElement("div");
    pair.className = "pair";
    pair.appendChild(side("BASE", row, "base"));
    pair.appendChild(side("CAND", row, "cand"));
    box.appendChild(pair);
    return box;
  }

  // Links and tests can preselect: compare.html#task=<task>&kind=regressed&q=<text>
  pagedBrowser({
    groups: data.tasks.map((t) => ({ name: t.task, label: t.task + " (" + t.rows.length + " flips)", rows: t.rows })),
    groupSelect: "task", modeSelect: "kind", list: "flips", noun: "flips",
    hashGroup: "task", hashMode: "kind", keep, render,
  });
})();
