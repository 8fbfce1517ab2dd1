// Progressive enhancement for the environment page: the filter box is hidden in the HTML and
// shown here, so a page without JavaScript shows every variable and no dead control.
(function () {
  "use strict";
  document.querySelectorAll("[data-filter-for]").forEach(function (box) {
    var table = document.getElementById(box.getAttribute("data-filter-for"));
    var input = box.querySelector("input");
    var status = box.querySelector("[role=status]");
    var noMatch = document.getElementById("no-match");
    if (!table || !input) return;
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    box.hidden = false;

    function apply() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      rows.forEach(function (row) {
        var text = (row.getAttribute("data-filter-text") || "").toLowerCase();
        var match = words.every(function (w) { return text.indexOf(w) !== -1; });
        row.hidden = !match;
        if (match) shown += 1;
      });
      if (status) {
        status.textContent = words.length ? shown + " of " + rows.length + " shown" : "";
      }
      if (noMatch) noMatch.hidden = shown !== 0;
    }

    input.addEventListener("input", apply);
    apply();
  });
})();
