// The asset page's charts: price history with the newest forecast after it, and past forecasts
// against what happened. Data comes from the page (json_script "price-data", "forecast-data",
// "track-data"); the last two may be absent.
(function () {
  var me = document.getElementById("asset-detail-js");
  var quote = me.dataset.quote;
  var BLUE = "#2563eb", ORANGE = "#ea580c", BAND = "rgba(234, 88, 12, 0.18)", INK = "#111827";

  function read(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  var points = read("price-data");
  var forecast = read("forecast-data");
  var track = read("track-data");

  // A price as the page writes it (core.formatting.price_text): four significant digits, never
  // fewer than two decimals nor more than eight, "," for thousands: 19,093.63, 1.235, 0.00001234.
  // Axis ticks keep the digits but drop the padding zeros (19,200, not 19,200.00).
  var EN = "en-US";
  function places(v) {
    var a = Math.abs(Number(v));
    return a === 0 ? 2 : Math.max(2, Math.min(8, 3 - Math.floor(Math.log10(a))));
  }
  function price(v) {
    return Number(v).toLocaleString(EN, { minimumFractionDigits: 2, maximumFractionDigits: places(v) });
  }
  function priceTick(v) {
    return Number(v).toLocaleString(EN, { maximumFractionDigits: places(v) });
  }

  function xy(list, key) {
    return list.map(function (p) { return { x: p.t, y: Number(p[key]) }; });
  }

  // The band is two lines with the area between them filled; the low edge stays out of the legend.
  function bandDatasets(list, name, dots) {
    return [
      { label: name + " band low", data: xy(list, "lo"), borderColor: BAND, backgroundColor: BAND,
        borderWidth: 1, pointRadius: 0, fill: false, hideInLegend: true },
      { label: name + " 80% band", data: xy(list, "hi"), borderColor: BAND, backgroundColor: BAND,
        borderWidth: 1, pointRadius: 0, fill: "-1" },
      { label: name + " median", data: xy(list, "m"), borderColor: ORANGE, backgroundColor: ORANGE,
        borderWidth: 2, borderDash: [6, 4], pointRadius: dots ? 2 : 0 },
    ];
  }

  // Axis ticks on whole UTC hours or days, not the linear scale's round milliseconds (00:53).
  var HOUR = 3600000, DAY = 24 * HOUR;
  var TICK_STEPS = [1, 2, 3, 6, 12, 24, 48, 96, 168, 336, 720, 1440, 2880, 4320, 8760]
    .map(function (h) { return h * HOUR; });
  function timeTicks(axis) {
    var range = axis.max - axis.min;
    // About 80 px per label, so labels stay level on a phone.
    var most = Math.max(2, Math.min(8, Math.floor(axis.width / 80) || 8));
    var step = TICK_STEPS.find(function (s) { return range / s <= most; }) || Math.ceil(range / most / DAY) * DAY;
    var ticks = [];
    for (var v = Math.ceil(axis.min / step) * step; v <= axis.max; v += step) ticks.push({ value: v });
    axis.ticks = ticks;
    axis.tickStep = step;
  }
  function tickLabel(v) {
    // Day steps show the date; shorter ones the day and hour, which stay short enough for phones.
    var iso = new Date(v).toISOString();
    return this.tickStep >= DAY ? iso.slice(0, 10) : iso.slice(5, 16).replace("T", " ");
  }

  function options() {
    return {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      interaction: { mode: "nearestPerDataset", intersect: false },
      scales: {
        x: {
          type: "linear",
          // The axis spans the data: the default ("ticks") pads it to round milliseconds.
          bounds: "data",
          afterBuildTicks: timeTicks,
          ticks: { callback: tickLabel },
        },
        y: { ticks: { callback: priceTick } },
      },
      plugins: {
        legend: {
          labels: {
            boxWidth: 14,
            filter: function (item, data) { return !data.datasets[item.datasetIndex].hideInLegend; },
          },
        },
        tooltip: {
          callbacks: {
            title: function (items) {
              return new Date(items[0].parsed.x).toISOString().slice(0, 16).replace("T", " ") + " UTC";
            },
            label: function (item) {
              return item.dataset.label + ": " + price(item.parsed.y) + " " + quote;
            },
          },
        },
      },
    };
  }

  // Datasets here have different x values (history, then forecast steps), so "index" mode would
  // pair unrelated points: take each dataset's point nearest the pointer, if the pointer is over it.
  function nearestPerDataset(Chart) {
    return function (chart, e) {
      var pos = Chart.helpers.getRelativePosition(e, chart);
      var items = [];
      chart.getSortedVisibleDatasetMetas().forEach(function (meta) {
        var els = meta.data;
        if (!els.length || pos.x < els[0].x - 8 || pos.x > els[els.length - 1].x + 8) return;
        var best = 0;
        for (var i = 1; i < els.length; i++) {
          if (Math.abs(els[i].x - pos.x) < Math.abs(els[best].x - pos.x)) best = i;
        }
        items.push({ element: els[best], datasetIndex: meta.index, index: best });
      });
      return items;
    };
  }

  function drawPrice(Chart) {
    var canvas = document.getElementById("price-chart");
    // The price line stays the first dataset: scripts and tests read it as datasets[0].
    var datasets = [{
      label: me.dataset.symbol + " close (" + quote + ")",
      data: points.map(function (p) { return { x: p.t, y: Number(p.c) }; }),
      borderColor: BLUE,
      borderWidth: 1.5,
      pointRadius: 0,
      tension: 0,
    }];
    var withForecast = Boolean(forecast && forecast.points.length);
    if (withForecast) datasets = datasets.concat(bandDatasets(forecast.points, "forecast", false));
    var chart = new Chart(canvas, { type: "line", data: { datasets: datasets }, options: options() });
    // Lets browser tests and people's scripts find the chart once it has been drawn.
    canvas.dataset.points = String(chart.data.datasets[0].data.length);
    canvas.dataset.forecastPoints = String(withForecast ? chart.data.datasets[3].data.length : 0);
    canvas.dataset.bandPoints = String(withForecast ? chart.data.datasets[1].data.length : 0);
    canvas.dataset.painted = "true";
  }

  function drawTrack(Chart) {
    var canvas = document.getElementById("track-chart");
    var ahead = me.dataset.ahead;
    var datasets = [{
      label: "close that happened",
      data: xy(track, "a"),
      borderColor: INK,
      backgroundColor: INK,
      borderWidth: 1.5,
      pointRadius: track.length <= 60 ? 2 : 0,
      tension: 0,
    }].concat(bandDatasets(track, "said " + ahead + " ahead:", track.length <= 60));
    var chart = new Chart(canvas, { type: "line", data: { datasets: datasets }, options: options() });
    canvas.dataset.points = String(chart.data.datasets[3].data.length);
    canvas.dataset.actualPoints = String(chart.data.datasets[0].data.length);
    canvas.dataset.painted = "true";
  }

  window.chartReady.then(function (Chart) {
    Chart.Interaction.modes.nearestPerDataset = nearestPerDataset(Chart);
    drawPrice(Chart);
    if (track) drawTrack(Chart);
  });

  // While a training is queued or running, follow its progress, and reload once it starts or
  // ends, so the new model's forecast (or the gate's verdict) appears without a manual reload.
  var training = document.getElementById("training-status");
  function poll() {
    fetch(training.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (run) {
        if (!run) return setTimeout(poll, 10000);
        if (!run.active || run.status !== training.dataset.status) return window.location.reload();
        var bar = document.getElementById("training-progress");
        var label = document.getElementById("training-label");
        if (bar && run.max_epochs) {
          bar.max = run.max_epochs;
          bar.value = run.epoch;
          bar.textContent = run.epoch + " of " + run.max_epochs;
        }
        if (label) label.textContent = run.label;
        setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 10000); });
  }
  if (training && window.fetch) setTimeout(poll, 3000);
})();
