// Price history chart of one asset. Data comes from the page (json_script "price-data").
(function () {
  var me = document.getElementById("asset-detail-js");
  var points = JSON.parse(document.getElementById("price-data").textContent);
  var quote = me.dataset.quote;
  // Ranges longer than two days label the axis by date only, so labels stay short on phones.
  var span = points.length ? points[points.length - 1].t - points[0].t : 0;
  var labelLength = span > 2 * 86400000 ? 10 : 16;

  window.chartReady.then(function (Chart) {
    var canvas = document.getElementById("price-chart");
    var chart = new Chart(canvas, {
      type: "line",
      data: {
        datasets: [{
          label: me.dataset.symbol + " close (" + quote + ")",
          data: points.map(function (p) { return { x: p.t, y: Number(p.c) }; }),
          borderColor: "#2563eb",
          borderWidth: 1.5,
          pointRadius: 0,
          tension: 0,
        }],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: {
            type: "linear",
            // The axis spans the data: the default ("ticks") pads it to round milliseconds.
            bounds: "data",
            ticks: {
              maxTicksLimit: 8,
              callback: function (v) { return new Date(v).toISOString().slice(0, labelLength).replace("T", " "); },
            },
          },
          y: { ticks: { callback: function (v) { return v.toLocaleString(); } } },
        },
        plugins: {
          tooltip: {
            callbacks: {
              title: function (items) {
                return new Date(items[0].parsed.x).toISOString().slice(0, 16).replace("T", " ") + " UTC";
              },
            },
          },
        },
      },
    });
    // Lets browser tests and people's scripts find the chart once it has been drawn.
    canvas.dataset.points = String(chart.data.datasets[0].data.length);
    canvas.dataset.painted = "true";
  });
})();
