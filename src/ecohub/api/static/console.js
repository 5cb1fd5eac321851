// ecohub console: charts (uPlot), live updates (server-sent events) and small HTMX glue. No build step.
(function () {
  "use strict";
  var COLORS = ["#0b6bcb", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#1098ad"];

  function width(el) { return Math.max(260, el.clientWidth || el.parentElement.clientWidth || 600); }

  function drawChart(el, x, series, opts) {
    if (!window.uPlot) return null;
    el.innerHTML = "";
    var data = [x].concat(series.map(function (s) { return s.values; }));
    var plot = new uPlot({
      width: width(el), height: 240,
      scales: { x: { time: true } },
      series: [{}].concat(series.map(function (s, i) {
        return { label: s.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
                 points: { show: x.length < 60 }, paths: opts && opts.step ? uPlot.paths.stepped({ align: 1 }) : undefined };
      })),
      axes: [{}, { size: 70, values: function (u, vals) { return vals.map(compact); } }],
    }, data, el);
    el._plot = plot;
    return plot;
  }

  function compact(v) {
    if (v == null) return "";
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + " bn";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + " m";
    if (a >= 1e3) return (v / 1e3).toFixed(1) + " k";
    return String(Math.round(v * 100) / 100);
  }

  function staticCharts() {
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var d = JSON.parse(el.getAttribute("data-chart"));
      drawChart(el, d.x, d.series, { step: el.getAttribute("data-kind") === "step" });
    });
  }

  // telemetry: one property over a time range, fetched as columns; live samples are appended
  var telemetry = null;
  function setupTelemetry() {
    var section = document.querySelector(".telemetry");
    if (!section) return;
    var form = section.querySelector("form");
    var box = section.querySelector("#telemetry-chart");
    var caption = section.querySelector("#telemetry-caption");
    function load() {
      var key = form.key.value;
      var range = (form.querySelector("input[name=range]:checked") || {}).value || "1h";
      if (!key) { caption.textContent = "This device has no numeric properties to chart."; return; }
      fetch(section.getAttribute("data-url") + "?key=" + encodeURIComponent(key) + "&range=" + range,
            { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (d) {
          var label = form.key.options[form.key.selectedIndex].text;
          // one downsampled request (~500 points) per chart; switches and modes are a step line of their runs
          telemetry = { key: key, x: d.x, y: d.y,
                        plot: drawChart(box, d.x, [{ label: label, values: d.y }], { step: d.step }) };
          caption.textContent = d.count + " samples of " + label + " in the last " + range +
            (d.step ? " (state changes)" : " (" + d.agg + " per " + d.bucket + ")");
          box.setAttribute("data-samples", String(d.count));
        });
    }
    form.addEventListener("change", load);
    load();
  }

  function appendSample(did, key, value, ts) {
    var section = document.querySelector(".telemetry");
    if (!telemetry || !telemetry.plot || !section || telemetry.key !== key) return;
    if (section.getAttribute("data-url").indexOf("/" + did + "/") < 0) return;
    if (typeof value === "boolean") value = value ? 1 : 0;
    if (typeof value !== "number") return;
    telemetry.x.push(ts / 1000); telemetry.y.push(value);
    telemetry.plot.setData([telemetry.x, telemetry.y]);
  }

  function applyValue(li, value) {
    var sw = li.querySelector("[data-live=switch]");
    if (sw) sw.setAttribute("aria-checked", value ? "true" : "false");
    var slider = li.querySelector("[data-live=slider]");
    if (slider && document.activeElement !== slider) slider.value = value;
    var select = li.querySelector("[data-live=select]");
    if (select && document.activeElement !== select) select.value = String(value);
    li.querySelectorAll("[data-live=value]").forEach(function (el) { el.textContent = String(value); });
    li.classList.remove("pending");
    li.classList.remove("flash"); void li.offsetWidth; li.classList.add("flash");
  }

  function connectLive() {
    var url = document.body.getAttribute("data-live");
    if (!url || !window.EventSource) return;
    var source = new EventSource(url);
    var status = document.getElementById("live-status");
    source.onopen = function () { document.body.classList.add("is-live"); if (status) status.textContent = "live"; };
    source.onerror = function () { document.body.classList.remove("is-live"); };
    source.addEventListener("props", function (e) {
      var m = JSON.parse(e.data);
      Object.keys(m.values).forEach(function (key) {
        document.querySelectorAll('[data-did="' + m.did + '"] [data-key="' + key + '"]').forEach(function (li) {
          applyValue(li, m.values[key]);
        });
        appendSample(m.did, key, m.values[key], m.ts);
      });
    });
    source.addEventListener("online", function (e) {
      var m = JSON.parse(e.data);
      document.querySelectorAll('.card[data-did="' + m.did + '"]').forEach(function (card) {
        card.classList.toggle("is-off", !m.online);
        var tag = card.querySelector("[data-online]");
        if (tag) { tag.textContent = m.online ? "online" : "offline"; tag.className = "tag " + (m.online ? "ok" : "off"); }
      });
    });
    source.addEventListener("event", function (e) {
      var m = JSON.parse(e.data);
      var list = document.querySelector('#events[data-did="' + m.did + '"]');
      if (!list) return;
      var li = document.createElement("li");
      li.textContent = m.name + " " + new Date(m.ts).toISOString().slice(0, 19).replace("T", " ") + " " + JSON.stringify(m.arguments);
      list.insertBefore(li, list.firstChild);
    });
  }

  function fleetStream() {
    var rate = document.getElementById("rate");
    if (!rate || !window.EventSource) return;
    var source = new EventSource(rate.getAttribute("data-stream"));
    source.addEventListener("stats", function (e) {
      var s = JSON.parse(e.data);
      rate.textContent = s.rate.toFixed(1);
      document.getElementById("received").textContent = s.received || 0;
      document.getElementById("stored").textContent = s.stored || 0;
    });
  }

  // a switch posts the opposite of what it shows now (live updates may have changed it since the page loaded)
  document.addEventListener("htmx:configRequest", function (e) {
    var elt = e.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-toggle")) {
      e.detail.parameters.value = elt.getAttribute("aria-checked") === "true" ? "false" : "true";
    }
  });
  // keep keyboard focus on the control that was used when its card is re-rendered
  var lastFocus = null;
  document.addEventListener("htmx:beforeSwap", function () {
    var a = document.activeElement;
    lastFocus = a && a.id ? a.id : null;
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (lastFocus) { var el = document.getElementById(lastFocus); if (el) el.focus(); }
  });

  window.addEventListener("DOMContentLoaded", function () {
    staticCharts(); setupTelemetry(); connectLive(); fleetStream();
  });
})();

// Selects that submit their form on change (no inline handlers: the console's CSP allows scripts from the hub only).
document.addEventListener("change", (e) => {
  const el = e.target;
  if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit") && el.form) el.form.submit();
});
document.addEventListener("submit", (e) => {
  if (e.target instanceof HTMLFormElement && e.target.hasAttribute("data-nosubmit")) e.preventDefault();
});
