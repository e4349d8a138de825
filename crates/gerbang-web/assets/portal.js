// gerbang portal: progressive enhancement only. Every form works without this file; it adds the
// live resend countdown, the live delivery status and the password hints as the participant types.
(function () {
  "use strict";

  // The countdown to the next resend: the server says how many seconds remain as of the page.
  var countdown = document.querySelector("[data-countdown]");
  var resend = document.querySelector("[data-resend]");
  if (countdown) {
    var left = parseInt(countdown.getAttribute("data-countdown"), 10) || 0;
    var ends = Date.now() + left * 1000;
    var template = countdown.getAttribute("data-template") || "{time}";
    var ready = countdown.getAttribute("data-ready") || "";
    var tick = function () {
      var seconds = Math.max(0, Math.ceil((ends - Date.now()) / 1000));
      if (seconds === 0) {
        countdown.textContent = ready;
        if (resend) { resend.disabled = false; }
        return;
      }
      var m = Math.floor(seconds / 60), s = seconds % 60;
      countdown.textContent = template.replace("{time}", m + ":" + (s < 10 ? "0" : "") + s);
      window.setTimeout(tick, 1000);
    };
    if (left > 0) { tick(); }
  }

  // "Didn't get the code?": the delivery status, refreshed while the code is pending.
  var live = document.querySelector("[data-status-live]");
  if (live && window.fetch) {
    var url = live.getAttribute("data-status-live");
    var refresh = function () {
      if (live.querySelector("[data-settled]")) { return; }
      window.fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            var panel = doc.querySelector("[data-status]");
            var old = live.querySelector("[data-status]");
            if (panel && old) { old.replaceWith(document.importNode(panel, true)); }
          }
          window.setTimeout(refresh, 5000);
        })
        .catch(function () { window.setTimeout(refresh, 10000); });
    };
    window.setTimeout(refresh, 3000);
  }

  // The password policy, marked rule by rule as the participant types (the server decides).
  var password = document.querySelector("[data-policy]");
  var rules = document.querySelector("[data-rules]");
  if (password && rules) {
    var min = parseInt(password.getAttribute("minlength"), 10) || 8;
    var checks = {
      password_too_short: function (v) { return Array.from(v).length >= min; },
      password_no_upper: function (v) { return /\p{Lu}/u.test(v); },
      password_no_lower: function (v) { return /\p{Ll}/u.test(v); },
      password_no_digit: function (v) { return /[0-9]/.test(v); },
      password_no_symbol: function (v) { return /[^\p{L}\p{N}\s]/u.test(v); }
    };
    password.addEventListener("input", function () {
      var value = password.value;
      rules.querySelectorAll("[data-rule]").forEach(function (item) {
        var check = checks[item.getAttribute("data-rule")];
        if (!check) { return; }
        var met = value.length > 0 && check(value);
        item.classList.toggle("met", met);
        if (met) { item.classList.remove("failed"); }
      });
    });
  }
})();
