// Portcullis admin: the only script the Content-Security-Policy allows.
// Everything works without it; it adds copy-to-clipboard.
'use strict';

document.addEventListener('click', function (ev) {
  var button = ev.target.closest('button.copy');
  if (!button) {
    return;
  }
  var source = document.getElementById(button.dataset.copy);
  var status = document.getElementById('copy-status');
  if (!source) {
    return;
  }
  var text = source.textContent;
  function say(msg) {
    if (status) {
      status.textContent = msg;
    }
  }
  // Without clipboard access (an old browser, a denied permission) select
  // the text, so one key press copies it.
  function selectText() {
    var range = document.createRange();
    range.selectNodeContents(source);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    var copied = false;
    try {
      copied = document.execCommand('copy');
    } catch (e) {
      copied = false;
    }
    say(copied ? 'Copied.' : 'Selected: press Ctrl+C to copy.');
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () {
      say('Copied.');
    }, selectText);
  } else {
    selectText();
  }
});
