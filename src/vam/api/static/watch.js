/* vam player page: hls.js for HLS, dash.js for DASH, a WebVTT captions track, chapters, quality. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("vam-config").textContent);
  var video = document.getElementById("video");
  var qualitySel = document.getElementById("quality");
  var captionsSel = document.getElementById("captions");
  var statusEl = document.getElementById("status");
  var state = { ended: false, error: null, errors: [], levels: [], engine: null, captions: null };
  window.vamPlayer = state;

  function setState(s) { document.body.dataset.state = s; }
  function showError(message) {
    state.error = state.error || message;
    state.errors.push(message);
    var el = document.getElementById("error");
    el.textContent = state.errors.map(function (m) { return "Playback error: " + m; }).join("\n");
    el.hidden = false;
    setState("error");
  }
  function addOption(sel, value, label) {
    var o = document.createElement("option");
    o.value = String(value);
    o.textContent = label;
    sel.appendChild(o);
  }

  video.addEventListener("playing", function () { setState("playing"); });
  video.addEventListener("ended", function () { state.ended = true; setState("ended"); });
  video.addEventListener("timeupdate", function () {
    statusEl.textContent = video.currentTime.toFixed(1) + " / " + (video.duration || 0).toFixed(1) + " s";
  });

  function addTrack(kind, url, label) {
    if (!url) return null;
    var t = document.createElement("track");
    t.kind = kind;
    t.src = url;
    t.srclang = "en";
    t.label = label;
    video.appendChild(t);
    t.track.mode = "hidden"; // load the cues; shown only when selected
    return t;
  }

  var captions = addTrack("subtitles", cfg.urls.captions, "English");
  if (captions) {
    addOption(captionsSel, "en", "English");
    state.captions = captions.track;
    captions.addEventListener("error", function () { showError("captions could not be loaded"); });
  }
  captionsSel.addEventListener("change", function () {
    if (captions) captions.track.mode = captionsSel.value === "off" ? "hidden" : "showing";
  });

  var chapters = addTrack("chapters", cfg.urls.chapters, "Chapters");
  function listChapters() {
    var list = document.getElementById("chapters");
    list.textContent = "";
    var cues = chapters.track.cues || [];
    for (var i = 0; i < cues.length; i++) {
      (function (cue) {
        var li = document.createElement("li");
        var b = document.createElement("button");
        b.textContent = cue.text + " (" + cue.startTime.toFixed(1) + " s)";
        b.addEventListener("click", function () { video.currentTime = cue.startTime; video.play(); });
        li.appendChild(b);
        list.appendChild(li);
      })(cues[i]);
    }
  }
  if (chapters) chapters.addEventListener("load", listChapters);

  function playHls(url) {
    if (!window.Hls || !Hls.isSupported()) {
      if (video.canPlayType("application/vnd.apple.mpegurl")) { video.src = url; return; }
      showError("this browser cannot play HLS (no Media Source Extensions)");
      return;
    }
    // captions come from the page's own WebVTT track, not from the manifest's subtitle group
    var hls = new Hls({ enableWebVTT: false, renderTextTracksNatively: false });
    state.engine = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, function (_e, data) {
      state.levels = data.levels.map(function (l) { return l.height + "p"; });
      data.levels.forEach(function (l, i) {
        addOption(qualitySel, i, l.height + "p (" + Math.round(l.bitrate / 1000) + " kb/s)");
      });
      video.play().catch(function () {});
    });
    hls.on(Hls.Events.ERROR, function (_e, data) {
      if (!data.fatal) return;
      var code = data.response && data.response.code ? " (HTTP " + data.response.code + ")" : "";
      showError(data.type + ": " + data.details + code);
    });
    qualitySel.addEventListener("change", function () { hls.currentLevel = Number(qualitySel.value); });
    hls.loadSource(url);
    hls.attachMedia(video);
  }

  function playDash(url) {
    if (!window.dashjs) { showError("dash.js is not loaded"); return; }
    var player = dashjs.MediaPlayer().create();
    state.engine = player;
    player.updateSettings({ streaming: { text: { defaultEnabled: false } } });
    player.on(dashjs.MediaPlayer.events.ERROR, function (e) {
      var err = e && e.error ? e.error : e;
      showError("DASH " + (err.code || "") + ": " + (err.message || "error"));
    });
    player.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, function () {
      var reps = player.getRepresentationsByType("video") || [];
      state.levels = reps.map(function (r) { return r.height + "p"; });
      reps.forEach(function (r, i) {
        addOption(qualitySel, i, r.height + "p (" + Math.round((r.bandwidth || 0) / 1000) + " kb/s)");
      });
    });
    qualitySel.addEventListener("change", function () {
      var auto = qualitySel.value === "-1";
      player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: auto } } } });
      if (!auto) player.setRepresentationForTypeByIndex("video", Number(qualitySel.value), false);
    });
    player.initialize(video, url, true);
  }

  if (cfg.status !== "ready") {
    showError("asset " + cfg.asset_id + " is " + cfg.status + ", not ready");
    return;
  }
  var url = cfg.format === "dash" ? cfg.urls.dash : cfg.urls.hls;
  if (!url) { showError("asset " + cfg.asset_id + " has no " + cfg.format + " manifest"); return; }
  if (cfg.format === "dash") playDash(url); else playHls(url);
})();
