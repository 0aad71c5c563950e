// Keyboard shortcuts for moderators. The console works without this file.
//   queue page: n claims the next item
//   item page:  a approve, r remove, e escalate, m mark as rumour, f false positive
//               (each picks the decision and moves to the reason); Ctrl+Enter submits.
document.addEventListener("keydown", function (event) {
  var target = event.target;
  var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT");
  var decide = document.getElementById("decide");
  if (decide && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    if (decide.reportValidity()) { decide.submit(); }
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) { return; }
  if (decide) {
    var radio = decide.querySelector('input[name="decision"][data-key="' + event.key + '"]');
    if (radio) {
      event.preventDefault();
      radio.checked = true;
      var reason = decide.querySelector('textarea[name="reason"]');
      if (reason) { reason.focus(); }
    }
    return;
  }
  var next = document.getElementById("claim-next");
  if (next && event.key === "n") {
    event.preventDefault();
    next.submit();
  }
});
