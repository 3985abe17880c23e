/* cityhub portal: the time-series chart and the location map, drawn as inline SVG from rows of the API.
 * No library, no tiles: axes, points and a projected frame, all generated here. */
(function () {
  "use strict";
  var ch = window.cityhub;
  var NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    var node = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function titled(node, text) {
    node.appendChild(svg("title", {}, text));
    return node;
  }

  /* About `count` round tick values spanning [lo, hi]. */
  function ticks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    var raw = (hi - lo) / count;
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 2.5, 5, 10].map(function (m) {
      return m * mag;
    }).find(function (s) {
      return s >= raw;
    });
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  var TIME_STEPS = [60e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 10800e3, 21600e3, 43200e3, 86400e3,
    172800e3, 604800e3, 2592000e3];

  function timeTicks(lo, hi, count) {
    var raw = (hi - lo) / count;
    var step = TIME_STEPS.find(function (s) {
      return s >= raw;
    }) || TIME_STEPS[TIME_STEPS.length - 1];
    var offset = new Date(lo).getTimezoneOffset() * 60e3; // round in local time, as the labels are
    var out = [];
    for (var v = Math.ceil((lo - offset) / step) * step + offset; v <= hi; v += step) out.push(v);
    return { values: out, step: step };
  }

  function timeLabel(ms, step) {
    var d = new Date(ms);
    var opts = step >= 86400e3 ? { month: "2-digit", day: "2-digit" } : { hour: "2-digit", minute: "2-digit" };
    if (step < 86400e3 && d.getHours() === 0 && d.getMinutes() === 0) opts = { month: "2-digit", day: "2-digit" };
    return d.toLocaleString(ch.lang() === "ko" ? "ko-KR" : "en-GB", opts);
  }

  /* Readings of `column` over `timeColumn`: a point per row, a line through the mean of each timestamp. */
  function timeSeries(rows, timeColumn, column, unit) {
    var W = 760;
    var H = 300;
    var M = { left: 64, right: 16, top: 16, bottom: 40 };
    var points = [];
    rows.forEach(function (r) {
      var v = r[column];
      var when = Date.parse(r[timeColumn]);
      if (typeof v === "number" && isFinite(v) && isFinite(when)) points.push({ t: when, v: v });
    });
    if (!points.length) return null;
    var t0 = Math.min.apply(null, points.map(function (p) { return p.t; }));
    var t1 = Math.max.apply(null, points.map(function (p) { return p.t; }));
    if (t1 === t0) {
      t0 -= 1800e3;
      t1 += 1800e3;
    }
    var v0 = Math.min.apply(null, points.map(function (p) { return p.v; }));
    var v1 = Math.max.apply(null, points.map(function (p) { return p.v; }));
    if (v1 === v0) {
      v0 -= 1;
      v1 += 1;
    }
    var pad = (v1 - v0) * 0.05;
    v0 -= pad;
    v1 += pad;
    var x = function (t) { return M.left + (t - t0) / (t1 - t0) * (W - M.left - M.right); };
    var y = function (v) { return H - M.bottom - (v - v0) / (v1 - v0) * (H - M.top - M.bottom); };

    var root = svg("svg", {
      viewBox: "0 0 " + W + " " + H, class: "chart", role: "img", "data-column": column,
      "aria-label": column + (unit ? " (" + unit + ")" : ""),
    });
    var axes = svg("g", { class: "axes" });
    ticks(v0, v1, 5).forEach(function (v) {
      axes.appendChild(svg("line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v), class: "grid" }));
      axes.appendChild(svg("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end" }, ch.fmt.number(v, 2)));
    });
    var tt = timeTicks(t0, t1, 6);
    tt.values.forEach(function (v) {
      axes.appendChild(svg("line", { x1: x(v), x2: x(v), y1: M.top, y2: H - M.bottom, class: "grid" }));
      axes.appendChild(svg("text", { x: x(v), y: H - M.bottom + 16, "text-anchor": "middle" }, timeLabel(v, tt.step)));
    });
    axes.appendChild(svg("rect", {
      x: M.left, y: M.top, width: W - M.left - M.right, height: H - M.top - M.bottom, class: "frame",
    }));
    if (unit) axes.appendChild(svg("text", { x: 4, y: M.top + 4, class: "unit" }, unit));
    root.appendChild(axes);

    var byTime = {};
    points.forEach(function (p) {
      (byTime[p.t] = byTime[p.t] || []).push(p.v);
    });
    var times = Object.keys(byTime).map(Number).sort(function (a, b) { return a - b; });
    var path = times.map(function (tm, i) {
      var vs = byTime[tm];
      var mean = vs.reduce(function (a, b) { return a + b; }, 0) / vs.length;
      return (i ? "L" : "M") + x(tm).toFixed(1) + "," + y(mean).toFixed(1);
    }).join(" ");
    root.appendChild(titled(svg("path", { d: path, class: "mean" }), ch.t("chart.mean")));

    var dots = svg("g", { class: "points" });
    points.forEach(function (p) {
      dots.appendChild(titled(
        svg("circle", { cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 2.5, class: "point" }),
        ch.fmt.dateTime(new Date(p.t).toISOString()) + ": " + ch.fmt.number(p.v) + (unit ? " " + unit : "")
      ));
    });
    root.appendChild(dots);
    return root;
  }

  function ramp(f) {
    // blue -> yellow -> red, for the latest value of the chart's column at each location
    var stops = [[33, 102, 172], [254, 224, 139], [215, 48, 39]];
    var s = f <= 0.5 ? 0 : 1;
    var g = f <= 0.5 ? f * 2 : (f - 0.5) * 2;
    var c = stops[s].map(function (a, i) { return Math.round(a + (stops[s + 1][i] - a) * g); });
    return "rgb(" + c.join(",") + ")";
  }

  /* Distinct (lon, lat) of the rows, one point each, on an equirectangular frame fitted to them. */
  function locations(rows, lonColumn, latColumn, labelColumn, valueColumn, unit) {
    var places = {};
    var order = [];
    rows.forEach(function (r) {
      var lon = r[lonColumn];
      var lat = r[latColumn];
      if (typeof lon !== "number" || typeof lat !== "number" || !isFinite(lon) || !isFinite(lat)) return;
      var key = lon + "," + lat;
      if (!places[key]) {
        places[key] = { lon: lon, lat: lat, label: labelColumn ? r[labelColumn] : null, rows: 0, value: null };
        order.push(key);
      }
      places[key].rows += 1;
      if (valueColumn && typeof r[valueColumn] === "number") places[key].value = r[valueColumn];
    });
    var list = order.map(function (k) { return places[k]; });
    if (!list.length) return null;

    var W = 760;
    var H = 460;
    var P = 36;
    var lons = list.map(function (p) { return p.lon; });
    var lats = list.map(function (p) { return p.lat; });
    var lo0 = Math.min.apply(null, lons);
    var lo1 = Math.max.apply(null, lons);
    var la0 = Math.min.apply(null, lats);
    var la1 = Math.max.apply(null, lats);
    var minSpan = 0.01;
    if (lo1 - lo0 < minSpan) { lo0 -= minSpan / 2; lo1 += minSpan / 2; }
    if (la1 - la0 < minSpan) { la0 -= minSpan / 2; la1 += minSpan / 2; }
    var padLon = (lo1 - lo0) * 0.06;
    var padLat = (la1 - la0) * 0.06;
    lo0 -= padLon; lo1 += padLon; la0 -= padLat; la1 += padLat;
    var k = Math.cos((la0 + la1) / 2 * Math.PI / 180); // equirectangular: shrink longitude at this latitude
    var scale = Math.min((W - 2 * P) / ((lo1 - lo0) * k), (H - 2 * P) / (la1 - la0));
    var cx = (lo0 + lo1) / 2;
    var cy = (la0 + la1) / 2;
    var x = function (lon) { return W / 2 + (lon - cx) * k * scale; };
    var y = function (lat) { return H / 2 - (lat - cy) * scale; };

    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "map", role: "img", "aria-label": ch.t("dataset.map") });
    root.appendChild(svg("rect", { x: 0, y: 0, width: W, height: H, class: "sea" }));
    var grid = svg("g", { class: "graticule" });
    var gx0 = cx - (W / 2) / (k * scale);
    var gx1 = cx + (W / 2) / (k * scale);
    var gy0 = cy - (H / 2) / scale;
    var gy1 = cy + (H / 2) / scale;
    ticks(gx0, gx1, 5).forEach(function (lon) {
      grid.appendChild(svg("line", { x1: x(lon), x2: x(lon), y1: 0, y2: H }));
      grid.appendChild(svg("text", { x: x(lon) + 3, y: 12 }, lon.toFixed(3) + "°E"));
    });
    ticks(gy0, gy1, 4).forEach(function (lat) {
      grid.appendChild(svg("line", { x1: 0, x2: W, y1: y(lat), y2: y(lat) }));
      grid.appendChild(svg("text", { x: 3, y: y(lat) - 3 }, lat.toFixed(3) + "°N"));
    });
    root.appendChild(grid);

    // a scale bar (bottom right): the roundest 1, 2 or 5 × 10^n km not longer than a fifth of the width
    var kmPerPx = 111.32 / scale; // scale is pixels per degree of latitude
    var target = kmPerPx * W / 5;
    var mag = Math.pow(10, Math.floor(Math.log10(target)));
    var km = [5, 2, 1].map(function (m) { return m * mag; }).find(function (v) { return v <= target; }) || mag;
    var barPx = km / kmPerPx;
    var bar = svg("g", { class: "scalebar", transform: "translate(" + (W - P / 2 - barPx) + "," + (H - P / 2 - 6) + ")" });
    bar.appendChild(svg("rect", { x: 0, y: 0, width: barPx, height: 5 }));
    bar.appendChild(svg("text", { x: barPx / 2, y: -4, "text-anchor": "middle" },
      km < 1 ? ch.fmt.number(km * 1000, 0) + " m" : ch.fmt.number(km) + " km"));
    root.appendChild(bar);
    var north = svg("g", { class: "north", transform: "translate(" + (W - P / 2 - 4) + "," + (P + 4) + ")" });
    north.appendChild(svg("path", { d: "M0,-10 L6,6 L0,2 L-6,6 Z" }));
    north.appendChild(svg("text", { x: 0, y: 20, "text-anchor": "middle" }, "N"));
    root.appendChild(north);

    var values = list.map(function (p) { return p.value; }).filter(function (v) { return v !== null; });
    var vmin = values.length ? Math.min.apply(null, values) : 0;
    var vmax = values.length ? Math.max.apply(null, values) : 0;
    var dots = svg("g", { class: "points" });
    list.forEach(function (p) {
      var fill = p.value === null ? "#0b5cab" : ramp(vmax > vmin ? (p.value - vmin) / (vmax - vmin) : 0.5);
      var text = (p.label ? p.label + "\n" : "") + p.lat.toFixed(5) + "°N " + p.lon.toFixed(5) + "°E" +
        (p.value !== null ? "\n" + valueColumn + ": " + ch.fmt.number(p.value) + (unit ? " " + unit : "") : "");
      dots.appendChild(titled(svg("circle", {
        cx: x(p.lon).toFixed(1), cy: y(p.lat).toFixed(1), r: 5, class: "point", fill: fill,
        "data-lon": p.lon, "data-lat": p.lat,
      }), text));
    });
    root.appendChild(dots);
    if (values.length && valueColumn) {
      var legend = svg("g", { class: "legend", transform: "translate(" + P + "," + (H - P / 2 - 6) + ")" });
      for (var i = 0; i < 10; i++) legend.appendChild(svg("rect", { x: i * 12, y: 0, width: 12, height: 8, fill: ramp(i / 9) }));
      legend.appendChild(svg("text", { x: 0, y: -3 }, valueColumn + (unit ? " (" + unit + ")" : "")));
      legend.appendChild(svg("text", { x: 124, y: 8 }, ch.fmt.number(vmin, 2) + " – " + ch.fmt.number(vmax, 2)));
      root.appendChild(legend);
    }
    return { svg: root, count: list.length };
  }

  ch.plots = { timeSeries: timeSeries, locations: locations };
})();
