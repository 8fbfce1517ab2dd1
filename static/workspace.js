// orgenv's admin pages: small progressive enhancements, in a static file (no inline script:
// the CSP forbids it). Every page works without them.
(function () {
  "use strict";

  // A Copy button for a read-only field (the one-time token): hidden until this script
  // runs, so a page without JavaScript shows no dead button.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = button.parentNode.querySelector(".copy-status");
    if (!field) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      field.select();
      var done = function () { if (status) status.textContent = "Copied."; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          document.execCommand("copy");
          done();
        });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  });

  // Project pickers: a labelled group reaches only projects with its label. The server
  // disables, with the reason, the projects the saved label refuses; this follows the
  // label as it is typed (the server checks again on save).
  document.querySelectorAll("[data-guard-source]").forEach(function (picker) {
    var source = document.getElementById(picker.getAttribute("data-guard-source"));
    if (!source) return;
    var side = picker.getAttribute("data-guard-side");  // "group": the label is the group's
    function apply() {
      var label = source.value.trim();
      picker.querySelectorAll("input[data-environment]").forEach(function (box) {
        var other = box.getAttribute("data-environment");
        var refused = side === "group"
          ? label !== "" && other !== label
          : other !== "" && other !== label;
        var reason = box.parentNode.querySelector(".guard-reason");
        box.disabled = refused && !box.checked;
        box.closest("li").classList.toggle("guard-refused", refused);
        if (reason) {
          reason.textContent = refused
            ? "labelled " + (other || "(no environment)") + ", this " + side + " is " +
              (label || "(no environment)")
            : "";
        }
      });
    }
    source.addEventListener("input", apply);
    source.addEventListener("change", apply);
    apply();
  });

  // Confirmation before a destructive button marked data-confirm.
  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
})();
