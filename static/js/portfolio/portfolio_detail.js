// The portfolio page's charts: allocation, value over time and projected value.
// Data comes from the page (json_script "portfolio-charts"); amounts are decimal strings.
(function () {
  var me = document.getElementById("portfolio-detail-js");
  var data = JSON.parse(document.getElementById("portfolio-charts").textContent);
  var quote = me.dataset.quote || "";
  var PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16",
                 "#6b7280", "#f97316"];

  // Money as the page writes it (core.formatting.money_text): two decimals, "," for thousands,
  // then the currency. The axes carry the currency in their title and ticks without cents.
  var EN = "en-US";
  function money(v) {
    return Number(v).toLocaleString(EN, { minimumFractionDigits: 2, maximumFractionDigits: 2 }) + (quote ? " " + quote : "");
  }
  function moneyAxis() {
    return {
      title: { display: Boolean(quote), text: "Value (" + quote + ")" },
      ticks: { callback: function (v) { return Number(v).toLocaleString(EN, { maximumFractionDigits: 2 }); } },
    };
  }
  function day(ms) { return new Date(ms).toISOString().slice(0, 10); }
  function minute(ms) { return new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC"; }

  // Lets browser tests and people's scripts find a chart once it has been drawn.
  function painted(canvas, chart, dataset) {
    canvas.dataset.points = String(chart.data.datasets[dataset].data.length);
    canvas.dataset.painted = "true";
  }

  var HOUR = 3600000, DAY = 24 * HOUR;

  // A time axis spanning the data, not padded round milliseconds. No tick is forced at the data's
  // ends (they would crowd the next label); `step` puts ticks on whole hours or days.
  function timeAxis(label, step) {
    var ticks = { maxTicksLimit: 6, includeBounds: false, maxRotation: 0, callback: label };
    if (step) ticks.stepSize = step;
    return { type: "linear", bounds: "data", ticks: ticks };
  }

  // Whole days between ticks, about five ticks over the history.
  function daySteps(points) {
    var span = points[points.length - 1].t - points[0].t;
    return Math.max(1, Math.ceil(span / DAY / 5)) * DAY;
  }

  var base = { animation: false, maintainAspectRatio: false, parsing: false };

  function allocation(Chart) {
    var canvas = document.getElementById("allocation-chart");
    if (!canvas) return;
    var rows = data.allocation;
    var chart = new Chart(canvas, {
      type: "doughnut",
      data: {
        labels: rows.map(function (r) { return r.label; }),
        datasets: [{
          data: rows.map(function (r) { return Number(r.value); }),
          backgroundColor: rows.map(function (_, i) { return PALETTE[i % PALETTE.length]; }),
          borderWidth: 1,
        }],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              label: function (item) {
                var r = rows[item.dataIndex];
                return r.label + ": " + money(r.value) + " (" + Number(r.share).toFixed(2) + "%)";
              },
            },
          },
        },
      },
    });
    painted(canvas, chart, 0);
  }

  function history(Chart) {
    var canvas = document.getElementById("history-chart");
    if (!canvas) return;
    var points = data.history;
    var chart = new Chart(canvas, {
      type: "line",
      data: {
        datasets: [{
          label: "Market value",
          data: points.map(function (p) { return { x: p.t, y: Number(p.value) }; }),
          borderColor: "#2563eb", backgroundColor: "#2563eb", borderWidth: 1.5, pointRadius: 0, tension: 0,
        }, {
          label: "Net invested",
          data: points.map(function (p) { return { x: p.t, y: Number(p.invested) }; }),
          borderColor: "#6b7280", backgroundColor: "#6b7280", borderWidth: 1.5, borderDash: [4, 3],
          pointRadius: 0, stepped: true,
        }],
      },
      options: Object.assign({}, base, {
        interaction: { mode: "index", intersect: false },
        scales: { x: timeAxis(day, points.length > 1 ? daySteps(points) : 0), y: moneyAxis() },
        plugins: {
          legend: { position: "bottom" },
          tooltip: { callbacks: {
            title: function (items) { return day(items[0].parsed.x); },
            label: function (item) { return item.dataset.label + ": " + money(item.parsed.y); },
          } },
        },
      }),
    });
    painted(canvas, chart, 0);
  }

  function projection(Chart) {
    var canvas = document.getElementById("forecast-chart");
    if (!canvas || !data.forecast) return;
    var f = data.forecast;
    function series(key) { return f.points.map(function (p) { return { x: p.t, y: Number(p[key]) }; }); }
    var chart = new Chart(canvas, {
      type: "line",
      data: {
        datasets: [{
          label: "Median",
          data: series("median"),
          borderColor: "#2563eb", backgroundColor: "#2563eb", borderWidth: 2, pointRadius: 0, tension: 0,
        }, {
          label: "10% quantile",
          data: series("low"),
          borderColor: "rgba(37, 99, 235, 0.35)", borderWidth: 1, pointRadius: 0, tension: 0, fill: false,
        }, {
          label: "80% band (to 90% quantile)",
          data: series("high"),
          borderColor: "rgba(37, 99, 235, 0.35)", backgroundColor: "rgba(37, 99, 235, 0.15)",
          borderWidth: 1, pointRadius: 0, tension: 0, fill: "-1",  // shade down to the 10% line
        }, {
          label: "Value now",
          data: [{ x: f.start.t, y: Number(f.start.value) }],
          borderColor: "#111827", backgroundColor: "#111827", pointRadius: 4, showLine: false,
        }],
      },
      options: Object.assign({}, base, {
        // "nearest" on x: the single "value now" point must not join every step's tooltip.
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: { x: timeAxis(function (v) { return minute(v).slice(5, 16); }, 6 * HOUR),
                  y: moneyAxis() },
        plugins: {
          legend: { position: "bottom", labels: { filter: function (l) { return l.text !== "10% quantile"; } } },
          tooltip: { callbacks: {
            title: function (items) { return minute(items[0].parsed.x); },
            label: function (item) { return item.dataset.label + ": " + money(item.parsed.y); },
          } },
        },
      }),
    });
    painted(canvas, chart, 0);
  }

  window.chartReady.then(function (Chart) {
    allocation(Chart);
    history(Chart);
    projection(Chart);
  });
})();
