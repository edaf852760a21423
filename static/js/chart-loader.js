// Loads Chart.js once and exposes window.chartReady (a Promise of the Chart class).
// "cdn": the CDN copy with its SRI hash, falling back to the local copy if it fails to load.
// "local": only the local copy (installed from the npm registry at setup).
(function () {
  var me = document.getElementById("chartjs-loader");
  var source = me.dataset.source, cdn = me.dataset.cdn, sri = me.dataset.sri, local = me.dataset.local;

  function load(src, integrity) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      if (integrity) { s.integrity = integrity; s.crossOrigin = "anonymous"; }
      s.onload = function () { window.Chart ? resolve(window.Chart) : reject(new Error("no Chart")); };
      s.onerror = function () { reject(new Error("failed to load " + src)); };
      document.head.appendChild(s);
    });
  }

  window.chartReady = (source === "local" ? load(local) : load(cdn, sri).catch(function () {
    window.chartjsFallback = true;
    return load(local);
  }));
})();
