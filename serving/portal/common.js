/* cityhub portal: what both pages share — API calls, the API's one error shape, formatting, the header. */
(function () {
  "use strict";
  var ch = window.cityhub;
  var t = ch.t;

  /* An error the API answered ({"error": {status, code, message, hint}}) or a failed connection. */
  function ApiError(status, code, message, hint) {
    this.status = status;
    this.code = code;
    this.message = message;
    this.hint = hint;
  }

  function api(path) {
    return fetch(path, { headers: { Accept: "application/json" } }).then(
      function (response) {
        return response.text().then(function (text) {
          var body = null;
          try {
            body = text ? JSON.parse(text) : null;
          } catch (e) {
            body = null;
          }
          if (response.ok && body !== null) return body;
          var err = body && body.error ? body.error : {};
          throw new ApiError(
            err.status || response.status,
            err.code || "http_error",
            err.message || response.statusText || t("error.status", { status: response.status }),
            err.hint || ""
          );
        });
      },
      function () {
        throw new ApiError(0, "network_error", t("error.network"), t("error.network.hint"));
      }
    );
  }

  /* el("td", {class: "x", text: "..."}, child, ...) */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    attrs = attrs || {};
    Object.keys(attrs).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  /* The error box: status and code, the API's message, its hint, and a retry button when one helps. */
  function errorBox(error, retry) {
    var e = error instanceof ApiError ? error : new ApiError(0, "error", String(error && error.message), "");
    var head = t("error.title") + (e.status ? " " + e.status : "") + (e.code ? " (" + e.code + ")" : "");
    var box = el(
      "div",
      { class: "error", role: "alert", "data-status": e.status, "data-code": e.code },
      el("strong", { class: "error-head", text: head }),
      el("p", { class: "error-message", text: e.message })
    );
    if (e.hint) box.appendChild(el("p", { class: "error-hint" }, el("b", { text: t("error.hint") + ": " }), e.hint));
    if (retry) {
      var button = el("button", { type: "button", class: "retry", text: t("error.retry") });
      button.addEventListener("click", retry);
      box.appendChild(button);
    }
    return box;
  }

  function cadence(iso) {
    var m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$/.exec(iso || "");
    if (!m) return iso || "";
    if (m[1]) return t("cadence.every", { n: m[1], unit: t("unit.day") });
    if (m[2]) return t("cadence.every", { n: m[2], unit: t("unit.hour") });
    return t("cadence.every", { n: m[3] || 0, unit: t("unit.min") });
  }

  function cadenceMs(iso) {
    var m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$/.exec(iso || "");
    if (!m) return null;
    return ((+m[1] || 0) * 1440 + (+m[2] || 0) * 60 + (+m[3] || 0)) * 60000;
  }

  function locale() {
    return ch.lang() === "ko" ? "ko-KR" : "en-GB";
  }

  function dateTime(iso) {
    if (!iso) return t("never");
    var d = new Date(iso);
    if (isNaN(d)) return iso;
    return d.toLocaleString(locale(), {
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      timeZoneName: "short",
    });
  }

  function ago(iso) {
    var ms = Date.now() - new Date(iso).getTime();
    if (!(ms >= 0)) return t("ago.now");
    var min = Math.floor(ms / 60000);
    if (min < 1) return t("ago.now");
    if (min < 60) return t("ago.min", { n: min });
    if (min < 2880) return t("ago.hour", { n: Math.floor(min / 60) });
    return t("ago.day", { n: Math.floor(min / 1440) });
  }

  function number(value, digits) {
    if (typeof value !== "number" || !isFinite(value)) return String(value);
    return value.toLocaleString(locale(), { maximumFractionDigits: digits === undefined ? 3 : digits });
  }

  function percent(part, whole) {
    if (!whole) return "–";
    return (100 * part / whole).toLocaleString(locale(), { maximumFractionDigits: 1 }) + " %";
  }

  function title(meta) {
    var main = meta.title[ch.lang()] || meta.title.en || meta.id;
    var other = meta.title[ch.lang() === "ko" ? "en" : "ko"] || "";
    return { main: main, other: other === main ? "" : other };
  }

  function tierBadge(tier) {
    var open = tier === "open";
    return el("span", {
      class: "badge " + (open ? "badge-open" : "badge-safezone"),
      "data-tier": tier,
      text: t(open ? "tier.open" : "tier.safezone"),
    });
  }

  /* The header's language toggle: shows the other language's name, switches and remembers. */
  function setupHeader() {
    var button = document.getElementById("lang-toggle");
    if (button) {
      button.addEventListener("click", function () {
        ch.setLang(ch.lang() === "ko" ? "en" : "ko");
      });
    }
    ch.applyLabels();
  }

  ch.ApiError = ApiError;
  ch.api = api;
  ch.el = el;
  ch.clear = clear;
  ch.errorBox = errorBox;
  ch.fmt = {
    cadence: cadence,
    cadenceMs: cadenceMs,
    dateTime: dateTime,
    ago: ago,
    number: number,
    percent: percent,
    title: title,
  };
  ch.tierBadge = tierBadge;
  ch.setupHeader = setupHeader;
})();
