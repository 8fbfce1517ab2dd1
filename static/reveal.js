// The Reveal button of a secret (SPEC "Secret exposure"): asks for a reason, POSTs it to the
// reveal endpoint and shows the value in place of the mask. Nothing is kept: a reload shows
// the mask again. When the endpoint wants a fresh password it names reauth_url, and the
// button offers that page, coming back here afterwards.
(function () {
  "use strict";

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  document.querySelectorAll("[data-reveal-url]").forEach(function (box) {
    var button = box.querySelector(".reveal-button");
    var form = box.querySelector(".reveal-form");
    var reason = box.querySelector(".reveal-reason");
    var confirm = box.querySelector(".reveal-confirm");
    var cancel = box.querySelector(".reveal-cancel");
    var status = box.querySelector(".reveal-status");
    var cell = box.closest("td") || box.parentNode;
    var masked = cell.querySelector("[data-masked]");
    box.hidden = false;

    function toggle(open) {
      form.hidden = !open;
      button.setAttribute("aria-expanded", String(open));
      if (open) reason.focus();
    }

    function say(text, link) {
      status.textContent = text;
      if (link) {
        var a = document.createElement("a");
        a.href = link.href;
        a.textContent = link.text;
        status.appendChild(document.createTextNode(" "));
        status.appendChild(a);
      }
    }

    function send() {
      if (!reason.value.trim()) {
        say("Say why you need to see this value: the reason is recorded in the audit log.");
        reason.focus();
        return;
      }
      confirm.disabled = true;
      say("Revealing…");
      fetch(box.getAttribute("data-reveal-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          "Accept": "application/json",
          "X-CSRFToken": csrfToken()
        },
        body: JSON.stringify({ reason: reason.value })
      })
        .then(function (response) {
          return response.json().then(
            function (data) { return { status: response.status, data: data }; },
            function () { return { status: response.status, data: {} }; }
          );
        })
        .then(function (result) {
          confirm.disabled = false;
          var data = result.data;
          if (result.status === 200) {
            var pre = document.createElement("pre");
            pre.className = "value revealed";
            pre.textContent = data.value;
            if (masked) masked.replaceWith(pre);
            var hint = cell.querySelector(".masked-hint");
            if (hint) hint.remove();
            toggle(false);
            button.hidden = true;
            say("Revealed; recorded in the audit log. Reload the page to hide it again.");
          } else if (result.status === 403 && data.reauth_url) {
            var back = window.location.pathname + window.location.search;
            say(data.detail || "", {
              href: data.reauth_url + "?next=" + encodeURIComponent(back),
              text: "Confirm your password"
            });
          } else {
            say(data.detail || "The value could not be revealed (HTTP " + result.status + ").");
          }
        })
        .catch(function () {
          confirm.disabled = false;
          say("The server could not be reached: try again.");
        });
    }

    button.addEventListener("click", function () { toggle(form.hidden); });
    cancel.addEventListener("click", function () { toggle(false); say(""); });
    confirm.addEventListener("click", send);
    reason.addEventListener("keydown", function (event) {
      // In the admin the control sits inside the change form: Enter must not submit it.
      if (event.key === "Enter") {
        event.preventDefault();
        send();
      }
    });
  });
})();
