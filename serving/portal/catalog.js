/* cityhub portal, catalog page: every dataset of GET /api/v1/datasets, searchable. */
(function () {
  "use strict";
  var ch = window.cityhub;
  var t = ch.t;
  var el = ch.el;
  var fmt = ch.fmt;
  var datasets = null;

  var search = document.getElementById("search");
  var tierFilter = document.getElementById("tier-filter");
  var list = document.getElementById("catalog");
  var status = document.getElementById("catalog-status");
  var count = document.getElementById("catalog-count");

  /* What a search matches: both titles, the id, the description and the keywords, case-insensitively. */
  function haystack(d) {
    return [d.id, d.title.ko, d.title.en, d.description, (d.keywords || []).join(" ")].join("\n").toLowerCase();
  }

  function matches(d, words, tier) {
    if (tier && d.tier !== tier) return false;
    var text = haystack(d);
    return words.every(function (w) {
      return text.indexOf(w) !== -1;
    });
  }

  function card(d) {
    var names = fmt.title(d);
    var href = "/datasets/" + encodeURIComponent(d.id);
    var facts = el(
      "dl",
      { class: "facts" },
      el("dt", { text: t("field.id") }),
      el("dd", {}, el("code", { text: d.id })),
      el("dt", { text: t("field.cadence") }),
      el("dd", { class: "cadence", text: fmt.cadence(d.cadence) }),
      el("dt", { text: t("field.licence") }),
      el("dd", { class: "licence", text: d.licence }),
      el("dt", { text: t("field.last_update") }),
      el("dd", { class: "last-update", title: d.last_update || "", text: fmt.dateTime(d.last_update) })
    );
    return el(
      "li",
      { class: "dataset-card", "data-id": d.id, "data-tier": d.tier },
      el(
        "h2",
        {},
        el("a", { href: href, class: "dataset-link", text: names.main }),
        " ",
        ch.tierBadge(d.tier)
      ),
      names.other ? el("p", { class: "subtitle", text: names.other }) : null,
      el("p", { class: "description", text: d.description }),
      facts
    );
  }

  function render() {
    if (!datasets) return;
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var tier = tierFilter.value;
    var shown = datasets.filter(function (d) {
      return matches(d, words, tier);
    });
    ch.clear(list);
    shown.forEach(function (d) {
      list.appendChild(card(d));
    });
    count.textContent = t("catalog.count", { shown: shown.length, total: datasets.length });
    ch.clear(status);
    if (!shown.length) status.appendChild(el("p", { class: "empty", text: t("catalog.empty") }));
  }

  /* The search lives in the address (?q=…&tier=…), so a filtered catalog can be linked and reloaded. */
  function remember() {
    var params = new URLSearchParams();
    if (search.value) params.set("q", search.value);
    if (tierFilter.value) params.set("tier", tierFilter.value);
    var query = params.toString();
    history.replaceState(null, "", query ? "?" + query : location.pathname);
  }

  function load() {
    ch.clear(status).appendChild(el("p", { class: "loading", text: t("loading") }));
    ch.api("/api/v1/datasets").then(
      function (body) {
        datasets = body.datasets || [];
        render();
      },
      function (error) {
        ch.clear(list);
        count.textContent = "";
        ch.clear(status).appendChild(ch.errorBox(error, load));
      }
    );
  }

  var params = new URLSearchParams(location.search);
  search.value = params.get("q") || "";
  tierFilter.value = params.get("tier") || "";
  document.getElementById("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
  });
  search.addEventListener("input", function () {
    render();
    remember();
  });
  tierFilter.addEventListener("change", function () {
    render();
    remember();
  });
  ch.onLang(function () {
    if (datasets) render();
    else if (status.querySelector(".error")) load(); // the error box again, in the new language
  });
  ch.setupHeader();
  load();
})();
