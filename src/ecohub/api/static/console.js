// ecohub console: charts (uPlot), live updates (server-sent events) and small HTMX glue. No build step.
(function () {
  "use strict";
  var COLORS = ["#0b6bcb", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#1098ad"];

  function lang() { return document.documentElement.lang || "en"; }

  // a value as the page shows it: the words the server gave (On/Off, value-list descriptions), numbers per locale
  function valueText(el, value) {
    var words = {};
    try { words = JSON.parse(el.getAttribute("data-words") || "{}") || {}; } catch (e) { words = {}; }
    var k = String(value);
    if (Object.prototype.hasOwnProperty.call(words, k)) return words[k];
    if (typeof value === "number") return value.toLocaleString(lang());
    return k;
  }

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
      if (!key) { caption.textContent = section.getAttribute("data-text-none") || ""; return; }
      fetch(section.getAttribute("data-url") + "?key=" + encodeURIComponent(key) + "&range=" + range,
            { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (d) {
          var label = form.key.options[form.key.selectedIndex].text;
          // one downsampled request (~500 points) per chart; switches and modes are a step line of their runs
          telemetry = { key: key, x: d.x, y: d.y,
                        plot: drawChart(box, d.x, [{ label: label, values: d.y }], { step: d.step }) };
          var text = section.getAttribute("data-text-samples") || "{count} samples of {label} in the last {range}";
          caption.textContent = text.replace("{count}", d.count.toLocaleString(lang())).replace("{label}", label)
            .replace("{range}", range) + (d.step ? "" : " (" + d.agg + " / " + d.bucket + ")");
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
    li.querySelectorAll("[data-live=value]").forEach(function (el) { el.textContent = valueText(el, value); });
    li.querySelectorAll("[data-live=ts]").forEach(function (el) { el.textContent = new Date().toLocaleString(lang()); });
    li.classList.remove("pending");
    li.classList.remove("flash"); void li.offsetWidth; li.classList.add("flash");
  }

  function connectLive() {
    var url = document.body.getAttribute("data-live");
    if (!url || !window.EventSource) return;
    var source = new EventSource(url);
    window.ecohubLive = source;  // the notification centre listens on the same stream
    var status = document.getElementById("live-status");
    source.onopen = function () {
      document.body.classList.add("is-live");
      if (status) status.textContent = status.getAttribute("data-live-text") || "live";
    };
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
        if (tag) setOnline(tag, m.online);
      });
      var twin = document.getElementById("twin-online");
      if (twin) setOnline(twin, m.online);
    });
    source.addEventListener("event", function (e) {
      var m = JSON.parse(e.data);
      var list = document.querySelector('#events[data-did="' + m.did + '"]');
      if (!list) return;
      var li = document.createElement("li");
      var args = Array.isArray(m.arguments) ? m.arguments.map(function (a) {
        return (a && a.piid != null) ? a.piid + ": " + valueText(li, a.value) : String(a);
      }) : Object.keys(m.arguments || {}).map(function (k) { return k + ": " + m.arguments[k]; });
      var b = document.createElement("b"); b.textContent = m.name;
      li.appendChild(b);
      li.appendChild(document.createTextNode(" " + new Date(m.ts).toLocaleString(lang()) + (args.length ? " · " + args.join(" · ") : "")));
      list.insertBefore(li, list.firstChild);
    });
  }

  function setOnline(tag, online) {
    tag.textContent = tag.getAttribute(online ? "data-on-text" : "data-off-text") || (online ? "online" : "offline");
    tag.className = "tag " + (online ? "ok" : "off");
  }

  function fleetStream() {
    var rate = document.getElementById("rate");
    if (!rate || !window.EventSource) return;
    var source = new EventSource(rate.getAttribute("data-stream"));
    var box = document.getElementById("rate-chart");
    var xs = [], ys = [], plot = null;
    source.addEventListener("stats", function (e) {
      var s = JSON.parse(e.data);
      rate.textContent = s.rate.toFixed(1);
      if (box && window.uPlot) {  // the last ten minutes of messages per second
        xs.push(Date.now() / 1000); ys.push(s.rate);
        if (xs.length > 600) { xs.shift(); ys.shift(); }
        if (!plot) plot = drawChart(box, xs, [{ label: box.getAttribute("data-label") || "messages/s", values: ys }]);
        else plot.setData([xs, ys]);
        box.setAttribute("data-points", String(xs.length));
      }
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

// Forms that ask first (delete a rule).
document.addEventListener("submit", (e) => {
  const form = e.target;
  if (form instanceof HTMLFormElement && form.hasAttribute("data-confirm") && !window.confirm(form.getAttribute("data-confirm"))) {
    e.preventDefault();
  }
});

// The phone menu: one header line, the navigation folds out under it.
document.addEventListener("click", (e) => {
  const button = e.target instanceof Element ? e.target.closest("#menu-toggle") : null;
  if (!button) return;
  const open = button.getAttribute("aria-expanded") !== "true";
  button.setAttribute("aria-expanded", String(open));
  document.querySelector(".top")?.classList.toggle("open", open);
});

// Search as you type in a home: cards whose name does not match are hidden (the form still submits as ?q=).
document.addEventListener("input", (e) => {
  const input = e.target;
  if (!(input instanceof HTMLInputElement) || !input.hasAttribute("data-filter")) return;
  const needle = input.value.trim().toLowerCase();
  document.querySelectorAll(input.getAttribute("data-filter")).forEach((card) => {
    card.hidden = needle !== "" && !(card.getAttribute("data-name") || "").includes(needle);
  });
});

// The rule editor: the property and value pickers come from the chosen device's spec.
(function () {
  "use strict";
  const form = document.querySelector(".rule-form[data-catalog]");
  if (!form) return;
  const catalog = JSON.parse(form.getAttribute("data-catalog") || "{}");
  const initial = JSON.parse(form.getAttribute("data-initial") || "{}");

  function props(side) {
    const did = form.querySelector(`#r-${side}-did`).value;
    const device = (catalog.devices || {})[did];
    const model = (device && (catalog.models || {})[device.model]) || { props: [] };
    return model.props.filter((p) => side === "then" ? p.access.includes("write")
      : p.access.includes("read") || p.access.includes("notify"));
  }

  function fillProps(side, wanted) {
    const select = form.querySelector(`#r-${side}-prop`);
    const list = props(side);
    select.innerHTML = "";
    let group = null, last = null;
    list.forEach((p) => {
      if (p.service !== last) {
        group = document.createElement("optgroup"); group.label = p.service || "—"; select.appendChild(group); last = p.service;
      }
      const o = document.createElement("option");
      o.value = p.key; o.textContent = p.label + (p.unit ? ` (${p.unit})` : "");
      if (p.key === wanted) o.selected = true;
      group.appendChild(o);
    });
    fillValue(side, wanted === undefined ? undefined : (side === "when" ? initial.when_value : initial.then_value));
  }

  function fillValue(side, wanted) {
    const key = form.querySelector(`#r-${side}-prop`).value;
    const p = props(side).find((x) => x.key === key);
    const box = form.querySelector(`#r-${side}-value-box`);
    const name = `${side}_value`, id = `r-${side}-value`;
    let control;
    if (p && p.values && p.values.length) {
      control = document.createElement("select");
      p.values.forEach((v) => {
        const o = document.createElement("option");
        o.value = JSON.stringify(v.value); o.textContent = v.text;
        if (wanted !== undefined && wanted !== "" && o.value === String(wanted)) o.selected = true;
        control.appendChild(o);
      });
    } else {
      control = document.createElement("input");
      if (p && p.range) {
        control.type = "number"; control.min = p.range.min; control.max = p.range.max; control.step = p.range.step;
      }
      if (wanted !== undefined) control.value = String(wanted).replace(/^"|"$/g, "");
    }
    control.id = id; control.name = name;
    if (side === "then") control.required = true;
    box.innerHTML = "";
    box.appendChild(control);
    if (p && p.unit) { const u = document.createElement("span"); u.className = "unit"; u.textContent = " " + p.unit; box.appendChild(u); }
  }

  // "changes" needs no value: the value picker shows only with a comparison
  function opChanged() {
    const op = form.querySelector("#r-when-op");
    const box = form.querySelector("#r-when-value-box");
    const label = form.querySelector("label[for=r-when-value]");
    const none = !op.value;
    box.hidden = none; if (label) label.hidden = none;
    box.querySelectorAll("input, select").forEach((c) => { c.disabled = none; });
  }

  form.addEventListener("change", (e) => {
    const t = e.target;
    if (!(t instanceof HTMLSelectElement)) return;
    if (t.id === "r-when-op") { opChanged(); return; }
    const side = t.getAttribute("data-side");
    if (!side) return;
    if (t.getAttribute("data-role") === "prop") fillValue(side, undefined);
    else fillProps(side, undefined);
    opChanged();
  });
  fillProps("when", initial.when_prop);
  fillProps("then", initial.then_prop);
  opChanged();
})();

// The installable web app: a service worker keeps the console's shell (styles, scripts, icons) for offline starts.
if ("serviceWorker" in navigator && window.isSecureContext) {
  navigator.serviceWorker.register("/console/sw.js", { scope: "/console/" }).catch(() => {});
}

// The notification centre: stored notifications (rules' notify actions, devices offline, homes shared) with their
// read state from the hub, plus live device events of this tab; new ones arrive on the live stream.
window.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector(".notif[data-notify]");
  if (!box || !window.EventSource) return;
  const KEY = "ecohub.notifications";
  const list = document.getElementById("notif-list");
  const count = document.getElementById("notif-count");
  const empty = document.getElementById("notif-empty");
  const toggle = document.getElementById("notif-toggle");
  const panel = document.getElementById("notif-panel");
  const storedUrl = box.getAttribute("data-stored");
  let saved = { items: [], unread: 0 };
  let labels = null;
  const load = () => labels || (labels = fetch(box.getAttribute("data-labels"), { credentials: "same-origin" })
    .then((r) => r.json()).catch(() => ({ devices: {}, text: {} })));
  const stored = () => { try { return JSON.parse(sessionStorage.getItem(KEY) || "[]"); } catch (e) { return []; } };
  const when = (ts) => new Date(ts).toLocaleTimeString(document.documentElement.lang || "en");
  function show() {
    const items = stored();
    list.innerHTML = "";
    // stored notifications and this tab's live events, newest first
    const rows = saved.items.map((n) => ({ ts: n.created_ms, stored: n }))
      .concat(items.map((n) => ({ ts: n.ts, live: n }))).sort((a, b) => b.ts - a.ts);
    rows.forEach((row) => {
      const li = document.createElement("li");
      if (row.stored) {
        const n = row.stored;
        li.className = "notif-item stored" + (n.severity !== "info" ? " bad" : "") + (n.read ? "" : " unread");
        li.dataset.id = n.id;
        li.textContent = n.title + ": " + n.body + " · " + when(n.created_ms);
      } else {
        li.className = row.live.kind === "offline" ? "notif-item bad" : "notif-item";
        li.textContent = row.live.text + " · " + when(row.live.ts);
      }
      list.appendChild(li);
    });
    const unread = saved.unread + items.filter((n) => !n.read).length;
    count.textContent = String(unread);
    count.hidden = unread === 0;
    empty.hidden = rows.length > 0;
  }
  function refresh() {
    if (!storedUrl) return;
    fetch(storedUrl, { credentials: "same-origin" }).then((r) => r.json())
      .then((d) => { saved = d; show(); }).catch(() => {});
  }
  function readAll() {
    if (!saved.unread) return;
    fetch("/console/notifications/read-all", { method: "POST", credentials: "same-origin" })
      .then(() => { saved.items = saved.items.map((n) => ({ ...n, read: true })); saved.unread = 0; show(); })
      .catch(() => {});
  }
  function add(kind, did, event, ts) {
    load().then((l) => {
      const device = (l.devices || {})[did] || { name: did, events: {} };
      const text = ((l.text || {})[kind] || "%(device)s").replace("%(device)s", device.name)
        .replace("%(event)s", (device.events || {})[event] || event || "");
      const items = [{ kind, did, text, ts, read: panel && !panel.hidden }].concat(stored()).slice(0, 30);
      sessionStorage.setItem(KEY, JSON.stringify(items));
      show();
    });
  }
  const source = window.ecohubLive || new EventSource(box.getAttribute("data-notify"));
  source.addEventListener("online", (e) => { const m = JSON.parse(e.data); add(m.online ? "online" : "offline", m.did, "", m.ts); });
  source.addEventListener("event", (e) => { const m = JSON.parse(e.data); add("event", m.did, m.name, m.ts); });
  source.addEventListener("notification", (e) => {
    const n = JSON.parse(e.data);
    if (n.kind === "offline" && n.did) {  // the stored notice replaces this tab's live one for the device
      sessionStorage.setItem(KEY, JSON.stringify(stored().filter((x) => !(x.kind === "offline" && x.did === n.did))));
    }
    saved.items = [n].concat(saved.items.filter((x) => x.id !== n.id)).slice(0, 30);
    saved.unread += n.read ? 0 : 1;
    show();
    if (!panel.hidden) readAll();
  });
  toggle.addEventListener("click", () => {
    const open = panel.hidden;
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) { sessionStorage.setItem(KEY, JSON.stringify(stored().map((n) => ({ ...n, read: true })))); readAll(); show(); }
  });
  document.getElementById("notif-clear").addEventListener("click", () => { sessionStorage.removeItem(KEY); show(); });
  show();
  refresh();
});
