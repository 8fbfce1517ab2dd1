// Selects the whole value of a [data-select-on-focus] field when it gets focus (the token
// shown once after issuing one), so a click and a copy take all of it.
(function () {
  "use strict";
  document.querySelectorAll("[data-select-on-focus]").forEach(function (field) {
    field.addEventListener("focus", function () { field.select(); });
    // Focused before this deferred script ran (a fast click): select it now.
    if (document.activeElement === field) field.select();
  });
})();
