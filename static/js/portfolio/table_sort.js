// Sortable tables: every th[data-sort] of a table.sortable gets a button that sorts its rows by that
// column, descending first for numbers and ascending first for text, and again the other way.
// Each cell carries its sort key in data-value (the exact number, empty when there is none: such
// rows go last either way). Each tbody sorts on its own, so sold-out rows stay below held ones.
// A static file, not inline script: the Content-Security-Policy allows no inline script.
(function () {
  function keyOf(row, index, type) {
    var cell = row.children[index];
    var raw = cell ? cell.getAttribute("data-value") : null;
    if (raw === null) raw = cell ? cell.textContent.trim() : "";
    if (raw === "") return null;
    return type === "number" ? Number(raw) : raw.toLowerCase();
  }

  function compare(a, b, direction) {
    if (a === null || b === null) return a === b ? 0 : (a === null ? 1 : -1);  // no value: last
    var order = a < b ? -1 : a > b ? 1 : 0;
    return direction === "ascending" ? order : -order;
  }

  function sortBy(table, th, direction) {
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var type = th.getAttribute("data-sort");
    Array.prototype.forEach.call(table.tBodies, function (body) {
      var rows = Array.prototype.map.call(body.rows, function (row, i) {
        return { row: row, key: keyOf(row, index, type), i: i };
      });
      // Ties keep their current order (Array.sort is stable, but say it explicitly for old engines).
      rows.sort(function (a, b) { return compare(a.key, b.key, direction) || a.i - b.i; });
      rows.forEach(function (r) { body.appendChild(r.row); });
    });
    table.querySelectorAll("th[data-sort]").forEach(function (other) {
      if (other === th) other.setAttribute("aria-sort", direction);
      else other.removeAttribute("aria-sort");
    });
    var status = document.getElementById(table.id.replace(/-table$/, "") + "-sort-status");
    if (status) status.textContent = "Sorted by " + th.textContent.trim() + ", " + direction + ".";
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th[data-sort]").forEach(function (th) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", function () {
        var current = th.getAttribute("aria-sort");
        var first = th.getAttribute("data-sort") === "number" ? "descending" : "ascending";
        var next = current ? (current === "ascending" ? "descending" : "ascending") : first;
        sortBy(table, th, next);
      });
    });
  });
})();
