/*
 * pulse.js: the Pulse tracker, written for Pulse.
 *
 *   <script defer src="https://PULSE/pulse.js" data-site="ps_..."></script>
 *
 * Optional attributes of the script tag:
 *   data-api            endpoint base (default: the origin this script came from)
 *   data-exclude        comma-separated path globs that are not tracked, matched against
 *                       the path (with the hash under data-hash); "*" stays within one
 *                       path segment, "**" crosses segments, e.g. "/admin/**,/blog/*.draft"
 *   data-hash           count hash routes (#/pricing) as pages
 *   data-track-clicks   "false" turns element-click events off
 *
 * Before the script loads, a page may queue calls:
 *   window.pulse = window.pulse || {q: [], track: function () { pulse.q.push(arguments); }};
 *
 * Privacy: no cookies and no storage. The only storage access is reading the
 * opt-out flag: localStorage.pulse_ignore === "true" sends nothing at all.
 * Safety: nothing here may throw into the page; every entry point is guarded.
 *
 * Build flag PULSE_FULL: build.py defines it as true for dist/pulse.js (everything)
 * and false for dist/pulse.core.js (pageviews and custom events only); terser then
 * drops the dead branches. Unbuilt, this file behaves like the full build.
 */
/* global PULSE_FULL */
// The whole tracker runs inside this try (left unindented): nothing escapes into the page.
try {
(function (w, d) {
  var FULL = typeof PULSE_FULL === 'undefined' || PULSE_FULL;

  // Caps of the server's schema (pulse/ingest/schemas.py): we truncate, never throw.
  var MAX_BATCH = 100;
  var MAX_PROPS = 30;
  var MAX_KEY = 64;
  var MAX_VALUE = 500;
  var MAX_URL = 2048;
  var MAX_TEXT = 255;
  var FLUSH_MS = 1000; // a batch leaves one second after its first event ...
  var FLUSH_AT = 10; // ... or as soon as it holds ten events, or when the page hides
  var ACTIVE_MS = 30000; // engaged = visible and active within the last 30 s
  var DOWNLOAD =
    /\.(pdf|docx?|xlsx?|pptx?|od[tsp]|csv|txt|epub|zip|rar|7z|t?gz|dmg|pkg|exe|msi|apk|deb|iso|mp3|wav|mp4|mov|avi)$/i;
  var CLICKABLE =
    'a,button,input,select,textarea,label,summary,[role=button],[role=link],[role=tab],[role=menuitem],[onclick]';

  var nav = navigator;
  var loc = location;

  /** fn wrapped so that any error stays inside the tracker. */
  function guard(fn) {
    return function (a, b) {
      try {
        return fn(a, b);
      } catch (e) {
        /* never throw into the page */
      }
    };
  }

  function noop() {}

  /** Listen in the capture phase: a page that stops propagation still gets counted. */
  function on(target, type, fn) {
    target.addEventListener(type, guard(fn), true);
  }

  /** A string of at most max characters (null and undefined give ""). */
  function cut(value, max) {
    return String(value == null ? '' : value).slice(0, max);
  }

  /** A random event id: a UUID on secure pages, else 22 random base-36 characters. */
  function uid() {
    var id = '';
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    while (id.length < 22) id += Math.random().toString(36).slice(2);
    return id.slice(0, 22);
  }

  /** Custom properties within the schema's caps: 30 keys of 64, scalar values, 500 chars. */
  function clean(props) {
    var out = {};
    Object.keys(props)
      .slice(0, MAX_PROPS)
      .forEach(function (key) {
        var value = props[key];
        if (value === undefined || typeof value == 'function') return;
        if (value !== null && typeof value == 'object') {
          try {
            value = JSON.stringify(value);
          } catch (e) {
            value = ''; // a cycle
          }
        }
        if (typeof value == 'number' && !isFinite(value)) value = null;
        if (value !== null && typeof value != 'number' && typeof value != 'boolean') {
          value = cut(value, MAX_VALUE);
        }
        out[key.slice(0, MAX_KEY)] = value;
      });
    return out;
  }

  // ---- The script tag and its settings -------------------------------------------
  var script = d.currentScript || d.querySelector('script[data-site]');
  function attr(name) {
    return script && script.getAttribute('data-' + name);
  }
  var site = attr('site');
  var pulse = w.pulse || {};
  var early = pulse.q || [];
  if (!site || pulse.loaded) return; // no site key, or the tracker is already on the page
  pulse.loaded = true;

  var ignored = false;
  try {
    ignored = w.localStorage.getItem('pulse_ignore') === 'true';
  } catch (e) {
    /* storage may be blocked: then there is no opt-out flag either */
  }

  var api =
    (attr('api') || new URL(script.src || '', loc.href).origin).replace(/\/+$/, '') +
    '/api/v1/track/batch';
  var hashMode = attr('hash') != null && attr('hash') !== 'false';
  var trackClicks = attr('track-clicks') !== 'false';
  var excludes = (attr('exclude') || '')
    .split(',')
    .map(function (glob) {
      glob = glob.trim();
      return (
        glob &&
        new RegExp(
          '^' +
            glob
              .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
              .replace(/\*\*?/g, function (stars) {
                return stars == '*' ? '[^/]*' : '.*';
              }) +
            '$'
        )
      );
    })
    .filter(Boolean);

  // ---- Batching and transport ------------------------------------------------------
  var queue = [];
  var timer = 0;
  var path = null; // path of the current page view (null before the first)
  var pageUrl = null; // its URL, the referrer of the next SPA page view
  var skip = false; // the current page view matches data-exclude
  var signals;
  var behave = false; // the next batch carries the behaviour summary
  var stats;

  /** Queue one event for the current page view. */
  function send(name, fields) {
    var event;
    var key;
    if (skip || ignored) return;
    event = { id: uid(), name: cut(name, 120), url: cut(loc.href, MAX_URL), ts: Date.now() };
    for (key in fields) event[key] = fields[key];
    queue.push(event);
    if (queue.length >= FLUSH_AT) flush();
    else if (!timer) timer = setTimeout(guard(flush), FLUSH_MS);
  }

  /**
   * Send the queue as one request: a text/plain POST is a CORS-simple request, so the
   * browser sends no preflight. When the page is going away, sendBeacon survives the
   * unload; otherwise (or when the beacon is refused) fetch with keepalive.
   */
  function flush(leaving) {
    var body;
    clearTimeout(timer);
    timer = 0;
    if (!queue.length) return;
    body = { site: site, events: queue.splice(0, MAX_BATCH) };
    if (FULL) {
      body.signals = signals;
      if (behave) body.behaviour = stats;
      behave = false;
    }
    body = JSON.stringify(body);
    if (leaving === true && nav.sendBeacon && nav.sendBeacon(api, body)) return;
    if (w.fetch) {
      fetch(api, { method: 'POST', body: body, keepalive: true, credentials: 'omit' })['catch'](
        noop
      );
    }
  }

  // ---- Custom events and the queue of early calls ------------------------------------
  function track(name, props) {
    var fields = {};
    if (name == null || name === '') return;
    if (props && typeof props == 'object') fields.props = clean(props);
    send(name, fields);
  }

  /** One queued call: the arguments of track(), or ["track", name, props]. */
  function run(args) {
    if (args[0] === 'track' && typeof args[1] == 'string') track(args[1], args[2]);
    else track(args[0], args[1]);
  }

  pulse.track = guard(track);
  pulse.q = { push: guard(run) };
  w.pulse = pulse;

  // ---- Engagement: visible and active time, scroll depth (full build) ---------------
  var engaged = 0; // engaged milliseconds of the current page view
  var active = 0; // time of the last activity while visible; 0 while hidden
  var depth = 0; // deepest scroll of the current page view, in per cent
  var ended = false; // its session_end has been queued
  var lastClick = 0;

  function hidden() {
    return d.visibilityState == 'hidden';
  }

  /** Count the time since the last activity (at most 30 s) and restart the clock. */
  function settle() {
    var now = Date.now();
    if (active) engaged += Math.min(now - active, ACTIVE_MS);
    active = hidden() ? 0 : now;
  }

  /** Raise the scroll depth to what the viewport shows now. */
  function measure() {
    var root = d.documentElement;
    var height = Math.max(root.scrollHeight, d.body ? d.body.scrollHeight : 0);
    var seen = (w.pageYOffset || root.scrollTop || 0) + w.innerHeight;
    var percent = height ? Math.min(100, Math.round((seen / height) * 100)) : 100;
    if (percent > depth) depth = percent;
  }

  /** Queue the session_end of the current page view, once. */
  function end() {
    if (ended) return;
    ended = true;
    settle();
    measure();
    stats.engaged_ms += engaged;
    if (skip) return;
    behave = true;
    send('session_end', {
      url: cut(pageUrl, MAX_URL),
      engaged_ms: Math.min(engaged, 86400000),
      scroll_depth: depth
    });
  }

  /** A short, stable CSS selector: the id, or up to three levels of tag.class:nth-of-type. */
  function selector(el) {
    var parts = [];
    var part;
    var sibling;
    var count;
    var index;
    var i;
    var esc = function (s) {
      return w.CSS && CSS.escape ? CSS.escape(s) : s;
    };
    for (i = 0; el && el.nodeType == 1 && i < 3; i++, el = el.parentElement) {
      if (el.id) {
        parts.unshift('#' + esc(el.id));
        break;
      }
      part = el.tagName.toLowerCase();
      (el.getAttribute('class') || '')
        .split(/\s+/)
        .filter(Boolean)
        .slice(0, 3)
        .forEach(function (name) {
          part += '.' + esc(name);
        });
      count = index = 0;
      sibling = el.parentElement && el.parentElement.firstElementChild;
      for (; sibling; sibling = sibling.nextElementSibling) {
        if (sibling.tagName == el.tagName) {
          count++;
          if (sibling == el) index = count;
        }
      }
      if (count > 1) part += ':nth-of-type(' + index + ')';
      parts.unshift(part);
    }
    return parts.join(' > ').slice(0, MAX_TEXT);
  }

  /** What an element click reports: never the value of a form field. */
  function describe(el) {
    var field = /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName);
    var text = field
      ? /^(submit|button|reset)$/.test(el.type)
        ? el.value
        : ''
      : el.innerText || el.textContent;
    return {
      selector: selector(el),
      tag: cut(el.tagName.toLowerCase(), 32),
      text: cut(text, 4096).replace(/\s+/g, ' ').trim().slice(0, MAX_TEXT),
      href: typeof el.href == 'string' && el.href ? cut(el.href, MAX_URL) : undefined
    };
  }

  /** Clicks: outbound links, file downloads, element clicks, and click rhythm. */
  function click(e) {
    var now = Date.now();
    var target = e.target;
    var link;
    var el;
    if (e.type == 'auxclick' && e.button != 1) return; // middle clicks open links too
    stats.clicks++;
    if (lastClick) stats.click_intervals_ms.push(now - lastClick);
    if (stats.click_intervals_ms.length > 20) stats.click_intervals_ms.shift();
    lastClick = now;
    settle();
    if (!target || !target.closest) return;
    link = target.closest('a[href]');
    if (link && /^https?:$/.test(link.protocol)) {
      if (DOWNLOAD.test(link.pathname) || link.hasAttribute('download')) {
        send('file_download', { props: { url: cut(link.href, MAX_VALUE) } });
      } else if (link.host != loc.host) {
        send('outbound_click', { props: { url: cut(link.href, MAX_VALUE) } });
      }
    }
    el = trackClicks && target.closest(CLICKABLE);
    if (el) send('element_click', { element: describe(el) });
  }

  /** Detection signals, read once per page load; the server weighs them. */
  function detect() {
    var ua = nav.userAgent;
    var chrome = /Chrome\//.test(ua) && !/; wv\)/.test(ua); // Android WebViews lack window.chrome
    // Globals that automation tools leave behind (checked on window and document).
    var automation = (
      '__playwright__binding__ __pwInitScripts _phantom callPhantom __nightmare domAutomation ' +
      'domAutomationController __selenium_unwrapped __selenium_evaluate __webdriver_evaluate ' +
      '__webdriver_script_fn __driver_evaluate __fxdriver_unwrapped _Selenium_IDE_Recorder calledSelenium'
    ).split(' ');
    var found = automation.filter(function (name) {
      return name in w || name in d;
    });
    Object.keys(d)
      .concat(Object.keys(w))
      .forEach(function (key) {
        if (/^\$?cdc_|^\$wdc_/.test(key)) found.push(cut(key, MAX_KEY));
      });
    return {
      webdriver: nav.webdriver === true,
      headless: /HeadlessChrome/.test(ua) || (chrome && !w.chrome),
      plugins: (nav.plugins || []).length,
      languages: (nav.languages || []).length,
      automation: found.slice(0, 20),
      outer_zero: w.outerWidth === 0 && w.outerHeight === 0,
      chrome_obj_missing: chrome && !w.chrome,
      touch_mismatch: /Mobi|Android|iPhone|iPad/.test(ua) && !(nav.maxTouchPoints > 0)
    };
  }

  // ---- Page views -------------------------------------------------------------------
  /** A page view when the path changed: on load and on every SPA navigation. */
  function pageview() {
    var next = loc.pathname + (hashMode ? loc.hash : '');
    var referrer;
    if (next === path) return; // no duplicate page view for the same path
    if (FULL && path !== null) end(); // the previous page view's engagement goes first
    referrer = pageUrl === null ? d.referrer : pageUrl;
    path = next;
    pageUrl = loc.href;
    skip = excludes.some(function (re) {
      return re.test(next);
    });
    if (FULL) {
      engaged = depth = 0;
      active = hidden() ? 0 : Date.now();
      ended = false;
      if (!skip) stats.pageviews++;
    }
    send('pageview', { referrer: cut(referrer, MAX_URL) });
  }

  /** The page is going away (or hidden, which may be the last thing we ever see). */
  function leave() {
    if (FULL) end();
    flush(true);
  }

  function start() {
    var history = w.history;
    pageview();
    [].forEach.call(early, guard(run)); // calls made before the script loaded
    ['pushState', 'replaceState'].forEach(function (method) {
      var original = history[method];
      if (typeof original != 'function') return;
      history[method] = function () {
        var result = original.apply(this, arguments); // the page's own errors stay its own
        guard(pageview)();
        return result;
      };
    });
    on(w, 'popstate', pageview);
    if (hashMode) on(w, 'hashchange', pageview);
    on(w, 'pagehide', leave);
    on(d, 'visibilitychange', function () {
      if (FULL) settle();
      if (hidden()) leave();
    });
    if (FULL) {
      on(d, 'click', click);
      on(d, 'auxclick', click);
      on(d, 'pointermove', function () {
        stats.pointer_moves++;
        settle();
      });
      on(d, 'keydown', function () {
        stats.keypresses++;
        settle();
      });
      on(w, 'scroll', function () {
        stats.scrolls++;
        settle();
        measure();
      });
    }
  }

  if (ignored) return; // opted out: pulse.track() exists and does nothing
  if (FULL) {
    stats = {
      pointer_moves: 0,
      scrolls: 0,
      keypresses: 0,
      clicks: 0,
      click_intervals_ms: [],
      engaged_ms: 0,
      pageviews: 0
    };
    signals = detect();
  }
  // A prerendered page is not a page view until the visitor actually opens it.
  if (d.prerendering) on(d, 'prerenderingchange', start);
  else start();
})(window, document);
} catch (e) {
  /* never throw into the page */
}
