// lansuite status page: refresh <main> every 10 s without reloading the page.
// The page is complete without this script; it only swaps in a fresh copy of <main>.
(function () {
  'use strict';
  var PERIOD = 10000;
  var main = document.getElementById('main');
  var live = document.getElementById('live');
  if (!main || !window.fetch || !window.DOMParser) {
    return;
  }
  var count = 0;
  var inflight = false;
  function say(text, stale) {
    if (live) {
      live.textContent = text;
      live.className = stale ? 'warn' : '';
    }
  }
  function editing() {
    // Do not pull the page from under someone typing in a search field.
    var a = document.activeElement;
    return a && main.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName);
  }
  function refresh() {
    if (inflight || document.hidden || editing()) {
      return;
    }
    inflight = true;
    fetch(window.location.href, { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) {
        if (!r.ok) {
          throw new Error('HTTP ' + r.status);
        }
        return r.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, 'text/html');
        var fresh = doc.getElementById('main');
        if (!fresh) {
          throw new Error('no content');
        }
        main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes));
        count += 1;
        main.setAttribute('data-refreshed', String(count));
        say('Refreshed every 10 s, last at ' + new Date().toLocaleTimeString() + '. ', false);
      })
      .catch(function (e) {
        say('Refresh failed (' + e.message + '), retrying. ', true);
      })
      .then(function () {
        inflight = false;
      });
  }
  say('Refreshed every 10 s. ', false);
  window.setInterval(refresh, PERIOD);
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) {
      refresh();
    }
  });
})();
