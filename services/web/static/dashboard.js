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
  source.onopen = () => { state.textContent = table.dataset.live; state.className = "live on"; };
  source.onerror = () => { state.textContent = table.dataset.reconnecting; state.className = "live off"; };
  const words = {
    alerts: JSON.parse(table.dataset.names || "{}"),
    departments: JSON.parse(table.dataset.departments || "{}"),
    lang: document.documentElement.lang,
    zone: table.dataset.zone,
  };
  for (const type of table.dataset.types.split(" ")) {
    source.addEventListener(type, (message) => show(body, type, JSON.parse(message.data), words));
  }
  source.addEventListener("end", (message) => {
    state.textContent = JSON.parse(message.data).reason;
    state.className = "live off";
    source.close();
  });
}

// Times as the server writes them elsewhere on the page: in the deployment's zone, the reader's language.
function when(text, words, withTime) {
  if (!text) {
    return "";
  }
  const options = { timeZone: words.zone, year: "numeric", month: "long", day: "numeric" };
  if (withTime) {
    Object.assign(options, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  }
  return new Intl.DateTimeFormat(words.lang, options).format(new Date(text));
}

function show(body, type, event, words) {
  const data = event.data || {};
  const row = document.createElement("tr");
  row.className = "alert " + type.replace(".", "-");
  row.dataset.task = data.task_id || "";
  row.dataset.type = type;
  const cells = [
    when(event.time, words, true),
    words.alerts[type] || type.replace("alert.", "").replaceAll("_", " "),
    data.title || data.task_id || "",
    (data.departments || []).map((code) => words.departments[code] || code).join("、"),
    when(data.due, words, false),
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
