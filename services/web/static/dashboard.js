// The dashboard's only script: the as-of control submits itself, and the alerts page follows
// the live stream. Everything else works without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const asOf = document.getElementById("as-of");
  if (asOf) {
    asOf.addEventListener("change", () => asOf.form.submit());
  }
  const alerts = document.getElementById("alerts");
  if (alerts) {
    followAlerts(alerts);
  }
});

const MAX_ROWS = 300;

function followAlerts(table) {
  const state = document.getElementById("live-state");
  const body = table.querySelector("tbody");
  // EventSource reconnects by itself and sends Last-Event-ID, so no alert is shown twice or missed.
  const source = new EventSource(table.dataset.stream);
  source.onopen = () => { state.textContent = "live"; state.className = "live on"; };
  source.onerror = () => { state.textContent = "reconnecting…"; state.className = "live off"; };
  for (const type of table.dataset.types.split(" ")) {
    source.addEventListener(type, (message) => show(body, type, JSON.parse(message.data)));
  }
  source.addEventListener("end", (message) => {
    state.textContent = JSON.parse(message.data).reason;
    state.className = "live off";
    source.close();
  });
}

function show(body, type, event) {
  const data = event.data || {};
  const row = document.createElement("tr");
  row.className = "alert " + type.replace(".", "-");
  row.dataset.task = data.task_id || "";
  const cells = [
    (event.time || "").slice(0, 19).replace("T", " "),
    type.replace("alert.", "").replaceAll("_", " "),
    data.title || data.task_id || "",
    (data.departments || []).join(", "),
    (data.due || "").slice(0, 10),
  ];
  for (const text of cells) {
    const cell = document.createElement("td");
    cell.textContent = text;
    row.appendChild(cell);
  }
  if (data.task_id && data.task_id.startsWith("task-")) {
    const link = document.createElement("a");
    link.href = "/tasks/" + encodeURIComponent(data.task_id);
    link.textContent = row.children[2].textContent;
    row.children[2].replaceChildren(link);
  }
  body.prepend(row);
  while (body.rows.length > MAX_ROWS) {
    body.deleteRow(-1);
  }
}
