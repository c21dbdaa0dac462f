// Progressive enhancement only: every page works without this script.
// The live queue: replaces the table with each snapshot the server sends (server-sent events).
"use strict";
(function () {
  var table = document.getElementById("queue");
  if (!table || !window.EventSource) { return; }
  var body = table.querySelector("tbody");
  var count = document.getElementById("queue-count");
  var longest = document.getElementById("queue-longest");
  var empty = document.getElementById("queue-empty");
  var source = new EventSource(table.getAttribute("data-stream"));
  source.addEventListener("queue", function (ev) {
    var snap;
    try { snap = JSON.parse(ev.data); } catch (e) { return; }
    var rows = document.createDocumentFragment();
    snap.callers.forEach(function (c) {
      var tr = document.createElement("tr");
      [c.position, c.waited, c.trust, c.category].forEach(function (v) {
        var td = document.createElement("td");
        td.textContent = String(v);
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
    count.textContent = String(snap.waiting);
    longest.textContent = snap.longest;
    if (empty) { empty.hidden = snap.waiting > 0; }
    table.setAttribute("data-updated", String(Date.now()));
  });
})();
