// The report's sample browser (browser.js pages it).
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("samples-data").textContent);
  const col = Object.fromEntries(data.fields.map((f, i) => [f, i])); // column names of each sample row
  const SEARCHED = ["id", "prompt", "response", "extracted", "reference"];
  const wrong = (row) => row[col.correct] !== true;

  function keep(row, mode, q) {
    if (mode === "wrong" && !wrong(row)) return false;
    if (mode === "errors" && !row[col.error]) return false;
    return !q || SEARCHED.some((f) => String(row[col[f]] ?? "").toLowerCase().includes(q));
  }

  function render(row) {
    const box = document.createElement("div");
    box.className = "sample " + (wrong(row) ? "wrong" : "right");
    const head = document.createElement("div");
    const verdict = row[col.error] ? "error: " + row[col.error] : (wrong(row) ? "wrong" : "correct");
    head.textContent = "#" + row[col.id] + " · score " + row[col.score] + " · " + verdict;
    box.appendChild(head);
    box.appendChild(promptDetails(row[col.prompt]));
    box.appendChild(field("response", row[col.response]));
    box.appendChild(field("extracted", row[col.extracted]));
    box.appendChild(field("reference", row[col.reference]));
    return box;
  }

  // Tests and links can preselect: report.html#filter=wrong&job=<job id>&q=<text>
  pagedBrowser({
    groups: data.jobs.map((j) => ({ name: j.job_id, label: j.label + " (" + j.rows.length + ")", rows: j.rows })),
    groupSelect: "job", modeSelect: "filter", list: "samples", noun: "samples",
    hashGroup: "job", hashMode: "filter", keep, render,
  });
})();
