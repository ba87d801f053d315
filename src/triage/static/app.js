// hubble-noise triage page: the only script. The page works without it; it adds the copy
// button of the draft rule.
"use strict";
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  var box = document.getElementById(button.getAttribute("data-copy"));
  if (!box) { return; }
  button.hidden = false;
  button.addEventListener("click", function () {
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(box.value).then(done, function () {
        box.select();
      });
    } else {
      box.select();
      try { if (document.execCommand("copy")) { done(); } } catch (e) { /* selected */ }
    }
  });
});
