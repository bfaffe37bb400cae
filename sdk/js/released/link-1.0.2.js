/*! @linkflow/link 1.0.2: linkflow's web drop-in. Docs: docs/sdk.md in the linkflow repository. */
(function (root, factory) {
  "use strict";
  var Linkflow = factory();
  if (typeof module === "object" && module && module.exports) {
    Object.defineProperty(module.exports, "__esModule", { value: true });
    module.exports.Linkflow = Linkflow;
    module.exports.default = Linkflow;
  } else if (root) {
    root.Linkflow = Linkflow;
  }
})(typeof self !== "undefined" ? self : this, function () {
  // -- library: link.mjs is this part, made by `go test ./sdk -update` --
  "use strict";

  var VERSION = "1.0.2";
  var STAGES = ["opened", "submitted", "challenge", "working", "finished"];
  // How long a document loaded in the frame has to say hello before the
  // drop-in concludes that the browser refused to show it (frame-ancestors)
  // or that it is not linkflow's page.
  var HELLO_MS = 4000;
  var PHONE = "(max-width: 600px)";

  // The one flow open at a time, shared by every copy of the drop-in the
  // page loaded (a bundle and a script tag, two versions): each closes the
  // other's flow before it opens one, so two never hold the page together.
  var shared = (function () {
    var g = typeof window !== "undefined" ? window : {};
    var key = "__linkflowDropIn";
    if (!g[key] || typeof g[key] !== "object") {
      try {
        Object.defineProperty(g, key, { value: { current: null }, configurable: false, enumerable: false, writable: false });
      } catch (e) { g[key] = { current: null }; }
    }
    return g[key];
  })();

  // linkOf reads a link's hosted page URL (its appClipUrl): linkflow's
  // origin, the link id, and the URL to open, which tells the page the
  // origin to talk to.
  function linkOf(raw) {
    if (typeof raw !== "string" || raw === "") {
      throw new TypeError("Linkflow.open: options.url must be the link's appClipUrl");
    }
    var u;
    try {
      u = new URL(raw, window.location.href);
    } catch (e) {
      throw new TypeError("Linkflow.open: options.url is not a URL: " + raw);
    }
    var m = /^\/link\/([^/]+)$/.exec(u.pathname);
    if ((u.protocol !== "https:" && u.protocol !== "http:") || !m) {
      throw new TypeError("Linkflow.open: options.url is not a link's appClipUrl (https://.../link/{linkId}?code=...)");
    }
    var origin = window.location.origin;
    if (!origin || origin === "null") {
      throw new Error("Linkflow.open: this page has no origin (file:// or a sandboxed frame) for linkflow to talk to");
    }
    u.searchParams.set("origin", origin);
    u.hash = "";
    return { url: u.href, origin: u.origin, linkId: decodeURIComponent(m[1]) };
  }

  function css(el, props) {
    for (var k in props) {
      if (Object.prototype.hasOwnProperty.call(props, k)) {
        el.style.setProperty(k, props[k]);
      }
    }
  }

  // modal shows url in an iframe over the page: centred on a desktop, the
  // whole screen on a phone. Styles are set through the CSSOM, so a page
  // whose Content-Security-Policy forbids inline styles can use it.
  function modal(url, opts, onClose, onLoad) {
    var doc = document;
    var overlay = doc.createElement("div");
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-modal", "true");
    overlay.setAttribute("aria-label", opts.title || "Connect your account");
    overlay.setAttribute("data-linkflow", "modal");
    css(overlay, {
      position: "fixed", top: "0", right: "0", bottom: "0", left: "0", "z-index": String(opts.zIndex || 2147483000),
      display: "flex", "align-items": "center", "justify-content": "center", background: "rgba(0, 0, 0, 0.55)",
      margin: "0", padding: "0"
    });
    var box = doc.createElement("div");
    css(box, { position: "relative", overflow: "hidden", background: "#f6f7f9", "box-shadow": "0 10px 40px rgba(0, 0, 0, 0.35)" });
    var frame = doc.createElement("iframe");
    frame.setAttribute("title", opts.title || "Connect your account");
    frame.setAttribute("sandbox", "allow-scripts allow-forms allow-same-origin");
    frame.setAttribute("referrerpolicy", "no-referrer");
    frame.setAttribute("data-linkflow", "frame");
    css(frame, { display: "block", width: "100%", height: "100%", border: "0", margin: "0", padding: "0" });
    frame.addEventListener("load", onLoad);
    frame.src = url;
    var close = doc.createElement("button");
    close.type = "button";
    close.setAttribute("aria-label", "Close");
    close.setAttribute("data-linkflow", "close");
    close.textContent = "\u00d7";
    css(close, {
      position: "absolute", top: "8px", right: "8px", width: "36px", height: "36px", margin: "0", padding: "0",
      border: "0", "border-radius": "18px", background: "rgba(0, 0, 0, 0.55)", color: "#fff", cursor: "pointer",
      font: "24px/36px system-ui, -apple-system, sans-serif", "text-align": "center", "z-index": "1"
    });
    close.addEventListener("click", onClose);
    box.appendChild(frame);
    box.appendChild(close);
    overlay.appendChild(box);

    var mq = window.matchMedia ? window.matchMedia(PHONE) : null;
    function layout() {
      if (mq && mq.matches) {
        css(box, { width: "100%", height: "100%", "border-radius": "0" });
      } else {
        css(box, { width: "min(480px, calc(100% - 32px))", height: "min(720px, calc(100% - 32px))", "border-radius": "12px" });
      }
    }
    layout();
    if (mq) {
      if (mq.addEventListener) { mq.addEventListener("change", layout); } else { mq.addListener(layout); }
    }
    function onKey(e) {
      if (e.key === "Escape" || e.key === "Esc") {
        e.preventDefault();
        onClose();
      }
    }
    doc.addEventListener("keydown", onKey, true);
    var html = doc.documentElement;
    var overflow = html.style.getPropertyValue("overflow");
    var focused = doc.activeElement;
    css(html, { overflow: "hidden" });
    (opts.container || doc.body).appendChild(overlay);
    try { frame.focus(); } catch (e) { /* not focusable yet */ }

    return {
      owns: function (w) { return w === frame.contentWindow; },
      remove: function () {
        doc.removeEventListener("keydown", onKey, true);
        if (mq) {
          if (mq.removeEventListener) { mq.removeEventListener("change", layout); } else { mq.removeListener(layout); }
        }
        if (overlay.parentNode) { overlay.parentNode.removeChild(overlay); }
        if (overflow) { html.style.setProperty("overflow", overflow); } else { html.style.removeProperty("overflow"); }
        if (focused && typeof focused.focus === "function") {
          try { focused.focus(); } catch (e) { /* gone */ }
        }
      }
    };
  }

  // popup opens url in a window of its own (a new tab on most phones).
  // Call Linkflow.open from a click, or the browser blocks it.
  function popup(url, opts, onGone) {
    var w = 480, h = 720;
    var left = Math.max(0, (window.screenX || 0) + ((window.outerWidth || w) - w) / 2);
    var top = Math.max(0, (window.screenY || 0) + ((window.outerHeight || h) - h) / 2);
    var win = window.open(url, "linkflow_" + Math.random().toString(36).slice(2),
      "popup=yes,width=" + w + ",height=" + h + ",left=" + Math.round(left) + ",top=" + Math.round(top));
    if (!win) { return null; }
    var timer = setInterval(function () {
      if (win.closed) { onGone(); }
    }, 400);
    return {
      owns: function (src) { return src === win; },
      remove: function () {
        clearInterval(timer);
        try { if (!win.closed) { win.close(); } } catch (e) { /* gone */ }
      }
    };
  }

  // call runs a callback of the page's. One that throws must not stop the
  // drop-in (open would not show the next flow): its error is thrown again
  // on its own, where the page's error reporting sees it.
  function call(fn, arg) {
    if (typeof fn !== "function") { return; }
    try { fn(arg); } catch (e) { setTimeout(function () { throw e; }, 0); }
  }

  /**
   * open opens a link's hosted page (its appClipUrl) and reports what the
   * end user does there; see index.d.ts and docs/sdk.md.
   */
  function open(options) {
    if (!options || typeof options !== "object") {
      throw new TypeError("Linkflow.open: options are required ({ url, onSuccess, onExit, onEvent })");
    }
    var mode = options.mode || "modal";
    if (mode !== "modal" && mode !== "popup") {
      throw new TypeError("Linkflow.open: options.mode must be \"modal\" or \"popup\"");
    }
    var link = linkOf(options.url);
    if (shared.current) { shared.current.close(); }

    var st = { status: null, stage: null, done: false, loads: 0, hellos: 0 };
    var ui = null;
    var handle = {
      linkId: link.linkId,
      close: function () { end("closed"); }
    };

    function teardown() {
      st.done = true;
      window.removeEventListener("message", onMessage);
      if (ui) { ui.remove(); }
      if (shared.current === handle) { shared.current = null; }
    }
    function end(reason, error) {
      if (st.done) { return; }
      teardown();
      var ev = { linkId: link.linkId, status: st.status, reason: reason };
      if (error) { ev.error = error; }
      call(options.onExit, ev);
    }
    function onLoad() {
      if (st.done) { return; }
      st.loads++;
      var loads = st.loads;
      setTimeout(function () {
        if (!st.done && st.hellos < loads) {
          end("error", "The linkflow page could not be shown here. Is this page's origin (" + window.location.origin +
            ") one of the organization's allowed origins?");
        }
      }, HELLO_MS);
    }
    function onMessage(e) {
      if (st.done || e.origin !== link.origin || !ui || !ui.owns(e.source)) { return; }
      var d = e.data;
      if (!d || typeof d !== "object" || d.source !== "linkflow" || d.linkId !== link.linkId) { return; }
      if (typeof d.status === "string" && d.status !== "") { st.status = d.status; }
      switch (d.type) {
        case "stage":
          if (STAGES.indexOf(d.stage) < 0) { return; }
          if (d.stage !== "submitted") { st.hellos++; }
          st.stage = d.stage;
          call(options.onEvent, { linkId: link.linkId, status: st.status, stage: d.stage });
          return;
        case "success":
          if (st.status !== "succeeded") { return; }
          teardown();
          call(options.onSuccess, { linkId: link.linkId, status: st.status });
          return;
        case "exit":
          end("closed");
          return;
        case "canceled":
          end("canceled");
          return;
        case "error":
          // The page shows no link (not found, a wrong code, too many
          // tries, linkflow unavailable) and says why.
          end("error", typeof d.error === "string" && d.error !== "" ? d.error.slice(0, 300) : "The linkflow page could not show the link.");
          return;
      }
    }

    window.addEventListener("message", onMessage);
    shared.current = handle;
    if (mode === "popup") {
      ui = popup(link.url, options, function () { end("closed"); });
      if (!ui) {
        var blocked = function () { end("error", "The browser blocked the popup: call Linkflow.open from a click."); };
        setTimeout(blocked, 0);
      }
    } else {
      ui = modal(link.url, options, function () { end("closed"); }, onLoad);
    }
    return handle;
  }

  return { version: VERSION, open: open };
  // -- end of library --
});
