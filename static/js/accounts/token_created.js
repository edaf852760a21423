// The page that shows a new API token's key once: copy buttons for the key and the curl example.
// A file, not inline code: the Content-Security-Policy (core/csp.py) runs scripts from this site only.
(function () {
  "use strict";
  var status = document.getElementById("copy-status");

  function textOf(element) {
    return (element.tagName === "INPUT" ? element.value : element.textContent).trim();
  }

  function select(element) {
    if (element.tagName === "INPUT") {
      element.select();
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copy(element) {
    // The clipboard API needs a secure context (HTTPS or localhost); elsewhere the older command.
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(textOf(element));
    }
    select(element);
    return document.execCommand("copy") ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.dataset.copy);
    var label = button.textContent;
    button.addEventListener("click", function () {
      copy(target).then(
        function () {
          button.textContent = "Copied";
          status.textContent = button.dataset.copied;
          window.setTimeout(function () { button.textContent = label; }, 2000);
        },
        function () {
          select(target);
          status.textContent = "Copying was not allowed: the text is selected, press Ctrl+C (⌘C on a Mac).";
        }
      );
    });
  });

  // Replaces the inline onfocus handler, which the policy blocked: a click on the key selects it all.
  var key = document.getElementById("token-key");
  key.addEventListener("focus", function () { key.select(); });
})();
